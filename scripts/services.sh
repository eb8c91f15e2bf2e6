#!/usr/bin/env bash
# Makes the services the tests need available: PostgreSQL and a single-node Kafka broker.
#   bash scripts/services.sh up     start what is not running (reuses what is)
#   bash scripts/services.sh down   stop the Kafka broker this project started
# With DATABASE_URL / KAFKA_BROKERS set, that service is yours: it is checked, never started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

pg_host=127.0.0.1
pg_port=5432

postgres_up() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    echo "PostgreSQL: using DATABASE_URL"
    return 0
  fi
  if pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null; then
    echo "PostgreSQL: answering on $pg_host:$pg_port"
    return 0
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not answering on $pg_host:$pg_port and pg_ctlcluster is not installed." >&2
    echo "Install it (apt-get install postgresql) or set DATABASE_URL to a server you run." >&2
    return 1
  fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "PostgreSQL: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 60); do
    pg_isready -q -h "$pg_host" -p "$pg_port" && { echo "PostgreSQL: ready"; return 0; }
    sleep 0.5
  done
  echo "PostgreSQL did not become ready on $pg_host:$pg_port within 30 s" >&2
  return 1
}

kafka_up() {
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then
    echo "Kafka: using KAFKA_BROKERS=$KAFKA_BROKERS"
    return 0
  fi
  bash "$here/kafka.sh" start
}

case "${1:-up}" in
  up) postgres_up && kafka_up ;;
  down) [[ -n "${KAFKA_BROKERS:-}" ]] || bash "$here/kafka.sh" stop ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
