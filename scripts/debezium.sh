#!/usr/bin/env bash
# Runs Debezium's PostgreSQL connector with its outbox EventRouter in a Kafka Connect standalone
# worker, configured to publish the outbox_event table the way the relay does (same topic, key,
# value and headers; see docs/migrate-to-debezium.md). No Docker: the jars come from Maven Central
# through scripts/debezium/*.xml and are cached, so only the first run needs Maven.
#   bash scripts/debezium.sh fetch     download and cache the jars (idempotent), print where
#   bash scripts/debezium.sh start     start a worker in DEBEZIUM_STATE_DIR, wait until it streams
#   bash scripts/debezium.sh stop      stop the worker of DEBEZIUM_STATE_DIR (and nothing else)
#   bash scripts/debezium.sh status    exit 0 when that worker runs and its task is RUNNING
# Environment (start):
#   DEBEZIUM_DATABASE_URL   postgresql://user[:password]@host:port/dbname (required; the server
#                           needs wal_level=logical)
#   DEBEZIUM_STATE_DIR      config, offsets, log and pid (required for start/stop/status)
#   KAFKA_BROKERS           (127.0.0.1:9092)
#   DEBEZIUM_SLOT (debezium_outbox), DEBEZIUM_PUBLICATION (debezium_outbox),
#   DEBEZIUM_PUBLICATION_AUTOCREATE (filtered; "disabled" when the publication exists already),
#   DEBEZIUM_TABLE (public.outbox_event), DEBEZIUM_POLL_INTERVAL_MS (500, Debezium's default),
#   DEBEZIUM_OFFSET_FLUSH_MS (10000), DEBEZIUM_REST_PORT (a free one), DEBEZIUM_START_TIMEOUT (120 s),
#   DEBEZIUM_HEAP_OPTS (-Xms128m -Xmx512m), PRISMA_OUTBOX_CACHE (~/.cache/prisma-outbox),
#   JAVA_HOME (else java from PATH).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
connect_pom="$script_dir/debezium/connect-pom.xml"
connector_pom="$script_dir/debezium/connector-pom.xml"

cache_root="${PRISMA_OUTBOX_CACHE:-${HOME:?HOME is not set}/.cache/prisma-outbox}/debezium"
start_timeout="${DEBEZIUM_START_TIMEOUT:-120}"
stop_timeout=20
connector_name=outbox-event-router

die() {
  printf 'debezium.sh: %s\n' "$*" >&2
  exit 1
}

pom_property() { # $1 pom, $2 property name: the pom is the single place a version is written
  sed -n "s:.*<$2>\([^<]*\)</$2>.*:\1:p" "$1" | head -n 1
}
kafka_version="$(pom_property "$connect_pom" kafka.version)"
debezium_version="$(pom_property "$connector_pom" debezium.version)"
[[ -n "$kafka_version" && -n "$debezium_version" ]] || die "cannot read the versions from $script_dir/debezium/*.xml"
connect_libs="$cache_root/connect-$kafka_version-libs"
plugin_root="$cache_root/debezium-$debezium_version-plugins"
plugin_dir="$plugin_root/debezium-connector-postgres"

now_ms() {
  local ns
  ns="$(date +%s%N)"
  echo $((ns / 1000000))
}

alive() { # a zombie still passes kill -0, so look at the process state too
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

download_tmp=""
cleanup_download() { [[ -z "$download_tmp" ]] || rm -rf "$download_tmp"; }
trap cleanup_download EXIT

# Resolves the runtime dependencies of pom $1 into directory $2 (extra mvn flags after), through
# a temporary directory renamed into place when complete, under a lock: concurrent runs download
# once and an interrupted download never leaves a half-filled cache.
fetch_into() {
  local pom="$1" target="$2" t0 output
  shift 2
  [[ -f "$target/.complete" ]] && return 0
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found: it is needed once to download the jars into $target. Install it with: apt-get install maven"
  mkdir -p "$(dirname "$target")"
  exec 8>"$target.lock"
  flock -w 900 8 || die "another process is still downloading into $target"
  if [[ -f "$target/.complete" ]]; then
    exec 8>&-
    return 0
  fi
  rm -rf "$target.tmp."*
  echo "Downloading $(basename "$target") with Maven (one time, cached)..." >&2
  t0="$(now_ms)"
  download_tmp="$(mktemp -d "$target.tmp.XXXXXX")"
  # Debian's Maven 3.8 prints stray ANSI resets even in batch mode: stripped from the output.
  if ! output="$(mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$download_tmp" "$@" 2>&1)"; then
    printf '%s\n' "$output" | sed 's/\x1b\[[0-9;]*m//g' >&2
    die "Maven could not fetch the jars of $pom (its output is above); Maven Central must be reachable"
  fi
  chmod 755 "$download_tmp"
  echo "$(find "$download_tmp" -name '*.jar' | wc -l) jars" >"$download_tmp/.complete"
  rm -rf "$target"
  mv -T "$download_tmp" "$target"
  download_tmp=""
  exec 8>&-
  echo "Downloaded $(find "$target" -name '*.jar' | wc -l) jars into $target in $(($(now_ms) - t0)) ms" >&2
}

cmd_fetch() {
  fetch_into "$connect_pom" "$connect_libs"
  # The connector's own folder leaves org.apache.kafka out: Debezium $debezium_version depends on
  # newer connect-api/kafka-clients, which clash with the $kafka_version worker's.
  fetch_into "$connector_pom" "$plugin_dir" -DexcludeGroupIds=org.apache.kafka
  [[ -n "$(find "$plugin_dir" -name "debezium-connector-postgres-$debezium_version.jar")" ]] ||
    die "Maven finished but debezium-connector-postgres-$debezium_version.jar is missing from $plugin_dir"
  build_headers_transform
  echo "connect: $connect_libs"
  echo "plugins: $plugin_root"
}

# Compiles scripts/debezium/smt (the transform that carries the row's `headers` column as Kafka
# headers) into the connector's plugin folder; the jar is named by the source's hash, so an edit
# rebuilds it. Needs a JDK (javac, jar).
build_headers_transform() {
  local source="$script_dir/debezium/smt/HeadersFromJson.java" hash jar build
  hash="$(sha256sum "$source" | cut -c 1-12)"
  jar="$plugin_dir/prisma-outbox-headers-$hash.jar"
  [[ -f "$jar" ]] && return 0
  command -v javac >/dev/null 2>&1 && command -v jar >/dev/null 2>&1 ||
    die "javac/jar not found: a JDK is needed to build $source. Install one with: apt-get install openjdk-17-jdk-headless"
  build="$(mktemp -d "$plugin_dir.smt.XXXXXX")"
  mkdir -p "$build/classes/META-INF/services"
  javac -nowarn --release 17 -cp "$connect_libs/*" -d "$build/classes" "$source" >&2 ||
    die "compiling $source failed"
  echo dev.prismaoutbox.connect.HeadersFromJson >"$build/classes/META-INF/services/org.apache.kafka.connect.transforms.Transformation"
  jar cf "$build/out.jar" -C "$build/classes" .
  rm -f "$plugin_dir"/prisma-outbox-headers-*.jar
  mv -f "$build/out.jar" "$jar"
  rm -rf "$build"
}

require_state_dir() {
  state_dir="${DEBEZIUM_STATE_DIR:?set DEBEZIUM_STATE_DIR to the directory of the worker (config, offsets, log, pid)}"
  log_file="$state_dir/connect.log"
  pid_file="$state_dir/connect.pid"
  rest_file="$state_dir/rest.port"
}

running_pid() {
  local pid cmdline
  [[ -f "$pid_file" ]] || return 0
  pid="$(cat "$pid_file" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 0
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 0
  [[ "$cmdline" == *" $state_dir/worker.properties "* ]] && echo "$pid"
  return 0
}

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 30000))
    if ! timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$port" 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found for the Connect REST listener"
}

# postgresql://user[:password]@host:port/dbname → db_user, db_password, db_host, db_port, db_name
parse_database_url() {
  local url="${DEBEZIUM_DATABASE_URL:?set DEBEZIUM_DATABASE_URL (postgresql://user:password@host:port/dbname)}"
  local re='^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/]+):([0-9]+)/([^?]+)'
  [[ "$url" =~ $re ]] || die "DEBEZIUM_DATABASE_URL must look like postgresql://user:password@host:port/dbname, got '$url'"
  db_user="${BASH_REMATCH[2]}" db_password="${BASH_REMATCH[4]}" db_host="${BASH_REMATCH[5]}"
  db_port="${BASH_REMATCH[6]}" db_name="${BASH_REMATCH[7]}"
}

write_config() {
  local rest_port="$1"
  cat >"$state_dir/worker.properties" <<EOF
# Written by scripts/debezium.sh; edits are overwritten on the next start.
bootstrap.servers=${KAFKA_BROKERS:-127.0.0.1:9092}
# Keys and values as the relay sends them: the aggregate id and the payload's JSON text.
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
header.converter=org.apache.kafka.connect.storage.SimpleHeaderConverter
offset.storage.file.filename=$state_dir/offsets.dat
offset.flush.interval.ms=${DEBEZIUM_OFFSET_FLUSH_MS:-10000}
plugin.path=$plugin_root
# Every plugin here declares itself in META-INF/services: no slow class scanning at start.
plugin.discovery=service_load
listeners=http://127.0.0.1:$rest_port
EOF
  cat >"$state_dir/connector.properties" <<EOF
name=$connector_name
connector.class=io.debezium.connector.postgresql.PostgresConnector
tasks.max=1
database.hostname=$db_host
database.port=$db_port
database.user=$db_user
database.password=$db_password
database.dbname=$db_name
topic.prefix=outbox_debezium
plugin.name=pgoutput
slot.name=${DEBEZIUM_SLOT:-debezium_outbox}
publication.name=${DEBEZIUM_PUBLICATION:-debezium_outbox}
publication.autocreate.mode=${DEBEZIUM_PUBLICATION_AUTOCREATE:-filtered}
table.include.list=${DEBEZIUM_TABLE:-public.outbox_event}
# xid8 has no converter (Debezium would drop it with a warning); the router needs none of these.
column.exclude.list=${DEBEZIUM_TABLE:-public.outbox_event}.txid
# Rows written before the slot existed belong to the relay that was running then.
snapshot.mode=no_data
# Only inserts are events: the relay's status updates and retention deletes are not.
skipped.operations=u,d,t
tombstones.on.delete=false
# Else four __debezium.context.* headers are added to every message.
extended.headers.enabled=false
poll.interval.ms=${DEBEZIUM_POLL_INTERVAL_MS:-500}
# headers: the row's headers column as Kafka headers (scripts/debezium/smt), before the router.
transforms=headers,outbox
transforms.headers.type=dev.prismaoutbox.connect.HeadersFromJson
transforms.outbox.type=io.debezium.transforms.outbox.EventRouter
# The relay publishes to the row's topic column (default outbox.event.<aggregatetype>).
transforms.outbox.route.by.field=topic
transforms.outbox.route.topic.replacement=\${routedByValue}
transforms.outbox.table.field.event.key=aggregateid
transforms.outbox.table.fields.additional.placement=type:header:eventType,aggregatetype:header:aggregateType
transforms.outbox.table.expand.json.payload=false
EOF
  cat >"$state_dir/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.reflections=ERROR
EOF
}

find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    java_bin="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    java_bin="$(command -v java)"
  else
    die "java not found: Kafka Connect needs a Java runtime (17). Install one with: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
  fi
}

signal_worker() { kill "-$2" -- "-$1" 2>/dev/null || kill "-$2" "$1" 2>/dev/null || true; }

terminate() {
  local pid="$1" deadline
  signal_worker "$pid" TERM
  deadline=$((SECONDS + stop_timeout))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    echo "Kafka Connect (pid $pid) did not stop within ${stop_timeout}s; killing it" >&2
    signal_worker "$pid" KILL
  fi
}

task_state() {
  curl -fsS --max-time 2 "http://127.0.0.1:$1/connectors/$connector_name/status" 2>/dev/null |
    sed -n 's/.*"tasks":\[{[^}]*"state":"\([A-Z]*\)".*/\1/p' || true
}

# Ready = the task is RUNNING and the connector logged that it streams from the slot.
wait_until_streaming() {
  local pid="$1" rest_port="$2" deadline=$((SECONDS + start_timeout)) state
  while :; do
    alive "$pid" || {
      tail -n 40 "$log_file" >&2
      die "Kafka Connect exited during startup (log: $log_file)"
    }
    state="$(task_state "$rest_port")"
    [[ "$state" == FAILED ]] && {
      curl -fsS "http://127.0.0.1:$rest_port/connectors/$connector_name/status" >&2 || true
      terminate "$pid"
      die "the connector's task FAILED (log: $log_file)"
    }
    if [[ "$state" == RUNNING ]] && grep -q 'Processing messages' "$log_file" 2>/dev/null; then return 0; fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$log_file" >&2
      terminate "$pid"
      die "Kafka Connect did not start streaming within ${start_timeout}s (DEBEZIUM_START_TIMEOUT)"
    fi
    sleep 0.5
  done
}

cmd_start() {
  require_state_dir
  find_java
  command -v curl >/dev/null 2>&1 || die "curl not found: it checks the worker's REST status. Install it with: apt-get install curl"
  parse_database_url
  mkdir -p "$state_dir"
  [[ -z "$(running_pid)" ]] || die "a worker from $state_dir is already running (pid $(cat "$pid_file")); stop it first"
  cmd_fetch >/dev/null
  local rest_port="${DEBEZIUM_REST_PORT:-$(free_port)}" heap t0
  t0="$(now_ms)"
  write_config "$rest_port"
  echo "$rest_port" >"$rest_file"
  read -r -a heap <<<"${DEBEZIUM_HEAP_OPTS:--Xms128m -Xmx512m}"
  : >"$log_file"
  # Own session: it outlives this script and stops as a process group.
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid nohup bash -c 'echo "$$" >"$1"; shift; exec "$@"' _ "$pid_file" \
    "$java_bin" "${heap[@]}" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$state_dir/log4j.properties" -cp "$connect_libs/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$state_dir/worker.properties" "$state_dir/connector.properties" \
    </dev/null >>"$log_file" 2>&1 8>&- &
  disown
  for _ in $(seq 1 50); do
    [[ -s "$pid_file" ]] && break
    sleep 0.1
  done
  [[ -s "$pid_file" ]] || die "the worker process did not start (see $log_file)"
  local pid
  pid="$(cat "$pid_file")"
  wait_until_streaming "$pid" "$rest_port"
  echo "Debezium $debezium_version streaming (Kafka Connect pid $pid, REST 127.0.0.1:$rest_port) in $(($(now_ms) - t0)) ms; log: $log_file"
}

cmd_stop() {
  require_state_dir
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    terminate "$pid"
    echo "Kafka Connect (pid $pid) stopped"
  else
    echo "Kafka Connect not running in $state_dir"
  fi
  rm -f "$pid_file"
}

cmd_status() {
  require_state_dir
  local pid state
  pid="$(running_pid)"
  [[ -n "$pid" ]] || {
    echo "Kafka Connect not running in $state_dir"
    exit 1
  }
  state="$(task_state "$(cat "$rest_file")")"
  echo "Kafka Connect pid $pid, task ${state:-unknown}"
  [[ "$state" == RUNNING ]]
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 fetch|start|stop|status" >&2
    exit 2
    ;;
esac
