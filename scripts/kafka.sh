#!/usr/bin/env bash
# Runs a real single-node Apache Kafka broker (KRaft mode: broker and controller in one JVM)
# on 127.0.0.1 without Docker. Needs Java; the broker's jars come from Maven Central through
# scripts/kafka/pom.xml and are cached, so only the first run needs Maven.
#   bash scripts/kafka.sh [start]   start the broker, or reuse the one already running
#   bash scripts/kafka.sh stop      stop it and delete its data
#   bash scripts/kafka.sh status    exit 0 when it is running and answering
#   bash scripts/kafka.sh logs      follow its log
# Environment:
#   KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_START_TIMEOUT (90 s),
#   KAFKA_STATE_DIR (<repo>/.kafka: config, log, pid and data),
#   PRISMA_OUTBOX_CACHE (~/.cache/prisma-outbox: downloaded jars),
#   KAFKA_HEAP_OPTS (-Xms256m -Xmx512m), JAVA_HOME (else java from PATH).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
pom="$script_dir/kafka/pom.xml"

host=127.0.0.1
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
start_timeout="${KAFKA_START_TIMEOUT:-90}"
stop_timeout=20

state_dir="${KAFKA_STATE_DIR:-$repo_root/.kafka}"
data_dir="$state_dir/data"
log_file="$state_dir/kafka.log"
pid_file="$state_dir/kafka.pid"
props_file="$state_dir/server.properties"
log4j_file="$state_dir/log4j.properties"

cache_root="${PRISMA_OUTBOX_CACHE:-${HOME:?HOME is not set}/.cache/prisma-outbox}"

die() {
  printf 'kafka.sh: %s\n' "$*" >&2
  exit 1
}

usage() {
  echo "usage: $0 [start|stop|status|logs]" >&2
  exit 2
}

# The pom is the single place the Kafka version is written down.
kafka_version="$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$pom" | head -n 1)"
[[ -n "$kafka_version" ]] || die "cannot read <kafka.version> from $pom"
libs_dir="$cache_root/kafka-$kafka_version-libs"
complete_marker="$libs_dir/.complete"

for value in "$port" "$controller_port" "$start_timeout"; do
  [[ "$value" =~ ^[0-9]+$ ]] || die "expected a number, got '$value' (check KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_START_TIMEOUT)"
done
[[ "$port" != "$controller_port" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ (both are $port)"

now_ms() {
  local ns
  ns="$(date +%s%N)"
  echo $((ns / 1000000))
}

elapsed() { # milliseconds since $1, as seconds with one decimal
  local ms=$(($(now_ms) - $1))
  printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

# True when something accepts TCP connections on $host:$1. The timeout keeps a port that
# silently drops packets from hanging the script.
port_open() {
  # shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$1" 2>/dev/null
}

# "python3 (pid 123)" for whoever listens on port $1, when ss can tell.
port_owner() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null |
    sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n 1 || true
}

# A zombie still passes `kill -0`, so look at the process state too.
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

# True when pid $1 is a broker started from this state dir (guards against pid reuse).
is_our_broker() {
  local cmdline
  alive "$1" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *" kafka.Kafka $props_file"* ]]
}

# Pid of a Kafka broker listening on port $1 that was started elsewhere (another checkout of the
# project, or by hand), or nothing. Such a broker is reused rather than fought over.
other_broker_pid() {
  command -v ss >/dev/null 2>&1 || return 0
  local pid cmdline
  pid="$(ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1 || true)"
  [[ -n "$pid" ]] && alive "$pid" || return 0
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 0
  [[ "$cmdline" == *" kafka.Kafka "* ]] && echo "$pid"
  return 0
}

# Pid of our running broker, or nothing.
running_pid() {
  local pid
  [[ -f "$pid_file" ]] || return 0
  pid="$(cat "$pid_file" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_broker "$pid"; then
    echo "$pid"
  fi
}

# The client port of the broker described by the current server.properties.
configured_port() {
  sed -n 's|^advertised\.listeners=PLAINTEXT://[^:]*:\([0-9]*\).*|\1|p' "$props_file" 2>/dev/null | head -n 1
}

# Serialises start/stop on one state dir, so two concurrent starts cannot launch two brokers.
# The broker itself must not inherit this descriptor (see launch), or it would hold the lock.
lock_state_dir() {
  mkdir -p "$state_dir"
  exec 9>"$state_dir/.lock"
  flock -w $((start_timeout + stop_timeout + 30)) 9 ||
    die "another kafka.sh is still busy with $state_dir"
}

find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    java_bin="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    java_bin="$(command -v java)"
  else
    die "java not found: the Kafka broker needs a Java runtime (17 recommended). Install one with: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
  fi
}

download_tmp=""
cleanup_download() { [[ -z "$download_tmp" ]] || rm -rf "$download_tmp"; }
trap cleanup_download EXIT

# Puts the broker's runtime jars in $libs_dir. They are resolved into a temporary directory
# next to it and renamed into place only when complete, so an interrupted download never
# leaves a half-filled cache behind.
ensure_jars() {
  [[ -f "$complete_marker" ]] && return 0
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found: it is needed once to download the Kafka $kafka_version jars from Maven Central into $libs_dir. Install it with: apt-get install maven"

  mkdir -p "$cache_root"
  exec 8>"$cache_root/.kafka-$kafka_version-libs.lock"
  flock -w 600 8 || die "another process is still downloading the Kafka jars into $cache_root"
  if [[ -f "$complete_marker" ]]; then # a concurrent run finished the download meanwhile
    exec 8>&-
    return 0
  fi
  # Under the lock no other download is running, so leftovers are from interrupted runs.
  rm -rf "$cache_root/.kafka-$kafka_version-libs.tmp."*

  echo "Downloading Apache Kafka $kafka_version jars with Maven (one time, cached in $libs_dir)..."
  local t0
  t0="$(now_ms)"
  download_tmp="$(mktemp -d "$cache_root/.kafka-$kafka_version-libs.tmp.XXXXXX")"
  # Maven's output is shown only on failure: Debian's Maven 3.8 prints stray ANSI resets
  # even in batch mode, so they are stripped.
  local output
  if ! output="$(mvn -B -q -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$download_tmp" 2>&1)"; then
    printf '%s\n' "$output" | sed 's/\x1b\[[0-9;]*m//g' >&2
    die "Maven could not fetch the Kafka jars (its output is above); Maven Central must be reachable"
  fi
  [[ -f "$download_tmp/kafka_2.13-$kafka_version.jar" ]] ||
    die "Maven finished but kafka_2.13-$kafka_version.jar is missing from its output"
  chmod 755 "$download_tmp" # mktemp -d makes it private
  echo "kafka $kafka_version: $(find "$download_tmp" -name '*.jar' | wc -l) jars" >"$download_tmp/.complete"

  # A directory without the marker is an unverified copy from elsewhere: replace it.
  if [[ -e "$libs_dir" ]]; then
    local old="$cache_root/.kafka-$kafka_version-libs.tmp.old.$$"
    mv -T "$libs_dir" "$old"
    rm -rf "$old"
  fi
  mv -T "$download_tmp" "$libs_dir"
  download_tmp=""
  exec 8>&-
  echo "Downloaded $(find "$libs_dir" -name '*.jar' | wc -l) jars in $(elapsed "$t0")"
}

write_config() {
  cat >"$props_file" <<EOF
# Written by scripts/kafka.sh on every start; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$host:$controller_port
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port
advertised.listeners=PLAINTEXT://$host:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir

# Topics: several partitions by default so per-key ordering across partitions is exercised.
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true

# A single node cannot hold the default three replicas of the internal topics; one
# partition each keeps the first consumer group join and first transaction quick.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1

# Consumers in tests should get their partitions at once, not after the default 3 s.
group.initial.rebalance.delay.ms=0

# The log cleaner allocates this buffer up front (128 MiB by default) out of a small heap.
log.cleaner.dedupe.buffer.size=16777216
EOF

  cat >"$log4j_file" <<'EOF'
# Written by scripts/kafka.sh: everything goes to stdout, which is the state dir's kafka.log.
# The level comes from -Dkafka.log.level: INFO for the broker, WARN for the format step.
log4j.rootLogger=${kafka.log.level}, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
}

jvm_opts() {
  local heap
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  java_opts=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    "-Dkafka.logs.dir=$state_dir" "-Dlog4j.configuration=file:$log4j_file")
}

# A fresh, formatted data dir with a new random cluster id (22 characters of base64url).
format_storage() {
  local cluster_id output
  # A base64url id of 16 random bytes, as Kafka makes them. One starting with "-" would be read
  # by the tool's argument parser as an option, so draw again.
  cluster_id="-"
  while [[ "$cluster_id" == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c 1-22)"
  done
  rm -rf "$data_dir"
  mkdir -p "$data_dir"
  # With a static controller.quorum.voters, --standalone must not be passed.
  if ! output="$("$java_bin" "${java_opts[@]}" -Dkafka.log.level=WARN -cp "$libs_dir/*" kafka.tools.StorageTool \
    format -t "$cluster_id" -c "$props_file" 2>&1)"; then
    printf '%s\n' "$output" >&2
    die "formatting $data_dir failed"
  fi
  printf '%s\n' "$output" >>"$log_file"
}

# Starts kafka.Kafka in its own session so it outlives this script and can be stopped as a
# process group. The wrapper writes its own pid (java keeps it through exec), which stays
# right even if setsid has to fork.
launch() {
  rm -f "$pid_file"
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid nohup bash -c 'echo "$$" >"$1"; shift; exec "$@"' _ "$pid_file" \
    "$java_bin" "${java_opts[@]}" -Dkafka.log.level=INFO -cp "$libs_dir/*" kafka.Kafka "$props_file" \
    </dev/null >>"$log_file" 2>&1 8>&- 9>&- &
  disown # no "Killed" job notice from bash if it dies while we wait
  local _
  for _ in $(seq 1 50); do
    [[ -s "$pid_file" ]] && break
    sleep 0.1
  done
  [[ -s "$pid_file" ]] || die "the broker process did not start (see $log_file)"
  broker_pid="$(cat "$pid_file")"
}

print_log_tail() {
  echo "---- last 40 lines of $log_file ----" >&2
  tail -n 40 "$log_file" >&2 || true
  echo "----" >&2
}

# Sends $2 to the broker's process group, falling back to the pid alone.
signal_broker() {
  kill "-$2" -- "-$1" 2>/dev/null || kill "-$2" "$1" 2>/dev/null || true
}

# Stops pid $1: SIGTERM lets Kafka shut down cleanly; SIGKILL after $stop_timeout seconds.
terminate() {
  local pid="$1" deadline
  signal_broker "$pid" TERM
  deadline=$((SECONDS + stop_timeout))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    echo "Kafka (pid $pid) did not stop within ${stop_timeout}s; killing it" >&2
    signal_broker "$pid" KILL
    deadline=$((SECONDS + 5))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  fi
}

# Ready = the broker logged that it started AND the client port accepts connections.
wait_until_ready() {
  local pid="$1" deadline=$((SECONDS + start_timeout))
  while :; do
    if ! alive "$pid"; then
      echo "Kafka exited during startup." >&2
      print_log_tail
      rm -f "$pid_file"
      exit 1
    fi
    if grep -q "Kafka Server started" "$log_file" 2>/dev/null && port_open "$port"; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "Kafka did not become ready on $host:$port within ${start_timeout}s (KAFKA_START_TIMEOUT)." >&2
      print_log_tail
      terminate "$pid"
      rm -f "$pid_file"
      exit 1
    fi
    sleep 0.5
  done
}

ensure_port_free() { # $1 port, $2 the variable that chooses it
  port_open "$1" || return 0
  local owner
  owner="$(port_owner "$1")"
  die "port $1 on $host is already in use${owner:+ by $owner}, not by a broker started from $state_dir. Stop that process or pick another port with $2=<port>."
}

cmd_start() {
  find_java
  lock_state_dir

  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    local running_port
    running_port="$(configured_port)"
    if [[ "$running_port" != "$port" ]]; then
      die "Kafka from $state_dir is already running on $host:$running_port (pid $pid), not on $port. Stop it first (bash scripts/kafka.sh stop) or use another KAFKA_STATE_DIR."
    fi
    if port_open "$port"; then
      echo "Kafka already running on $host:$port (pid $pid)"
      exit 0
    fi
    # Most likely an earlier start was interrupted while the broker was still coming up.
    echo "Kafka (pid $pid) is running but $host:$port does not answer yet; waiting for it..."
    wait_until_ready "$pid"
    echo "Kafka already running on $host:$port (pid $pid)"
    exit 0
  fi
  rm -f "$pid_file"

  local other
  other="$(other_broker_pid "$port")"
  if [[ -n "$other" ]] && port_open "$port"; then
    echo "Kafka already running on $host:$port (pid $other, started outside $state_dir); reusing it"
    exit 0
  fi

  ensure_port_free "$port" KAFKA_PORT
  ensure_port_free "$controller_port" KAFKA_CONTROLLER_PORT
  ensure_jars

  local t0
  t0="$(now_ms)"
  echo "Starting Kafka $kafka_version on $host:$port (controller $host:$controller_port, state in $state_dir)..."
  # Keep the previous run's log around for post-mortems.
  if [[ -f "$log_file" ]]; then mv -f "$log_file" "$log_file.prev"; fi
  : >"$log_file"
  write_config
  jvm_opts
  format_storage
  launch
  wait_until_ready "$broker_pid"
  echo "Kafka $kafka_version ready on $host:$port (pid $broker_pid) in $(elapsed "$t0"); log: $log_file"
}

cmd_stop() {
  lock_state_dir
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    echo "Stopping Kafka (pid $pid)..."
    terminate "$pid"
    if alive "$pid"; then die "Kafka (pid $pid) is still alive after SIGKILL"; fi
    echo "Kafka stopped"
  else
    echo "Kafka not running"
  fi
  rm -f "$pid_file"
  rm -rf "$data_dir"
}

cmd_status() {
  local pid running_port
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    pid="$(other_broker_pid "$port")"
    if [[ -n "$pid" ]] && port_open "$port"; then
      echo "Kafka running on $host:$port (pid $pid, started outside $state_dir)"
      exit 0
    fi
    echo "Kafka not running"
    exit 1
  fi
  running_port="$(configured_port)"
  if port_open "$running_port"; then
    echo "Kafka running on $host:$running_port (pid $pid)"
    exit 0
  fi
  echo "Kafka process $pid is alive but $host:$running_port does not answer (still starting?)"
  exit 1
}

cmd_logs() {
  [[ -f "$log_file" ]] || die "no log yet at $log_file (start the broker first)"
  exec tail -n 100 -F "$log_file"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  logs) cmd_logs ;;
  *) usage ;;
esac
