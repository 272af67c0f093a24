#!/usr/bin/env bash
# Start/stop a single-node Apache Kafka broker (KRaft mode) on 127.0.0.1 from jars fetched
# from Maven Central. Idempotent: `start` when it already runs only says so.
#   deploy/local/kafka.sh start|stop|status|fetch
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_HOME (.local/kafka).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-9093}
home=${KAFKA_HOME:-$root/.local/kafka}
libs=$home/libs
data=$home/data-$port
pidfile=$home/kafka-$port.pid
log=$home/kafka-$port.log

say() { echo "kafka: $*"; }

need() {
  command -v java >/dev/null || { say "Java 17+ is required (apt-get install -y openjdk-17-jre-headless), or use 'docker compose up kafka'."; exit 1; }
  if [ ! -f "$libs/.complete" ]; then
    command -v mvn >/dev/null || { say "Maven is required to fetch the broker (apt-get install -y maven), or use Docker Compose."; exit 1; }
    say "fetching the broker from Maven Central into $libs"
    rm -rf "$libs"
    mvn -q -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime
    touch "$libs/.complete"
  fi
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

java_cmd() {
  java -Xms256m -Xmx768m -XX:+UseG1GC -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$libs/*" "$@"
}

start() {
  need
  if running; then say "already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"; return 0; fi
  if accepting; then say "a broker started elsewhere already listens on 127.0.0.1:$port; using it"; return 0; fi
  mkdir -p "$data"
  props=$home/server-$port.properties
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=-1
PROPS
  if [ ! -f "$data/meta.properties" ]; then
    say "formatting storage in $data"
    java_cmd kafka.tools.StorageTool format --standalone -t "$(java_cmd kafka.tools.StorageTool random-uuid)" -c "$props" >/dev/null
  fi
  say "starting broker on 127.0.0.1:$port (log: $log)"
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$props" >"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if accepting; then say "ready on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
    running || { say "broker exited; last lines of $log:"; tail -20 "$log"; exit 1; }
    sleep 0.5
  done
  say "not accepting connections after 60 s; see $log"; exit 1
}

stop() {
  if running; then
    pid=$(cat "$pidfile"); say "stopping pid $pid"; kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  else say "not running"; fi
  rm -f "$pidfile"
}

case "${1:-start}" in
  start) start ;;
  fetch) need ;;  # the jars only (kafka-cluster.sh uses them)
  stop) stop ;;
  status) if running; then say "running (pid $(cat "$pidfile")) on 127.0.0.1:$port"; else say "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status|fetch" >&2; exit 2 ;;
esac
