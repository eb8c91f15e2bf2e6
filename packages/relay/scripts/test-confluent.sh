#!/usr/bin/env bash
# Runs the publisher contract (test/publishers.int.test.ts) with @confluentinc/kafka-javascript
# too. The client is native (librdkafka) and stays out of the lockfile: it is installed once into
# a cache folder with CKJS_LINKING=dynamic (needs librdkafka-dev: apt-get install librdkafka-dev;
# the build takes a few minutes) and the tests load it from there (RELAY_CONFLUENT_DIR).
#   npm run test:confluent --workspace @prisma-outbox/relay [-- <vitest args>]
#   confluent_dir          print the folder the client is installed in, installing it if needed
# Environment: PRISMA_OUTBOX_CACHE (~/.cache/prisma-outbox), CONFLUENT_VERSION (1.10.1).
set -euo pipefail

version="${CONFLUENT_VERSION:-1.10.1}"
cache="${PRISMA_OUTBOX_CACHE:-$HOME/.cache/prisma-outbox}/confluent-kafka-javascript-$version"
relay_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

loads() {
  (cd "$cache" 2>/dev/null && node -e "require('@confluentinc/kafka-javascript')" >/dev/null 2>&1)
}

install_client() {
  loads && return 0
  echo "test-confluent: installing @confluentinc/kafka-javascript@$version into $cache (CKJS_LINKING=dynamic; a few minutes)" >&2
  mkdir -p "$cache"
  printf '{ "name": "confluent-kafka-cache", "private": true }\n' >"$cache/package.json"
  (cd "$cache" && CKJS_LINKING=dynamic npm install --no-audit --no-fund --no-save \
    "@confluentinc/kafka-javascript@$version" >&2)
  if ! loads; then
    echo "test-confluent: @confluentinc/kafka-javascript@$version does not load from $cache" >&2
    echo "test-confluent: is librdkafka-dev installed? (apt-get install -y librdkafka-dev)" >&2
    exit 1
  fi
}

install_client
if [ "${1:-}" = confluent_dir ]; then
  echo "$cache"
  exit 0
fi
cd "$relay_dir"
RELAY_CONFLUENT_DIR="$cache" exec npx vitest run test/publishers.int.test.ts "$@"
