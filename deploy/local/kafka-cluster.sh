#!/usr/bin/env bash
# A three-broker Apache Kafka cluster (KRaft) on 127.0.0.1, from the jars deploy/local/kafka.sh fetches:
# three combined broker+controller nodes forming ONE quorum (every node formatted with the same
# --initial-controllers; --standalone would make three one-node clusters), for replication factor 3 with
# min.insync.replicas 2 — the production setting — on one machine (the system tests kill a node under load).
#   deploy/local/kafka-cluster.sh start|stop|status      the three together (stop: a lone survivor would
#                                                        hang without a quorum)
#   deploy/local/kafka-cluster.sh kill N | start-node N  kill -9 node N (1..3) / start it again
# Environment: KAFKA_CLUSTER_PORTS (19192,19193,19194), KAFKA_CLUSTER_CONTROLLER_PORTS (19292,19293,19294),
# KAFKA_CLUSTER_DIR (.local/kafka/cluster-<first port>), KAFKA_HOME (.local/kafka: the jars).
# Nothing here touches the single broker of kafka.sh (9092/9093). The jars carry no CLI tools: topics
# are made by the services (EXCHANGE_TOPIC_REPLICATION_FACTOR=3, EXCHANGE_TOPIC_MIN_INSYNC_REPLICAS=2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
home=${KAFKA_HOME:-$root/.local/kafka}
libs=$home/libs
IFS=, read -r -a ports <<<"${KAFKA_CLUSTER_PORTS:-19192,19193,19194}"
IFS=, read -r -a cports <<<"${KAFKA_CLUSTER_CONTROLLER_PORTS:-19292,19293,19294}"
dir=${KAFKA_CLUSTER_DIR:-$home/cluster-${ports[0]}}

say() { echo "kafka-cluster: $*"; }
[ "${#ports[@]}" -eq 3 ] && [ "${#cports[@]}" -eq 3 ] || { say "three ports and three controller ports, please"; exit 2; }

java_cmd() {
  java -Xms128m -Xmx512m -XX:+UseG1GC -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$libs/*" "$@"
}

pidfile() { echo "$dir/node-$1.pid"; }
running() { [ -f "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }
accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

properties() {  # node number 1..3
  local n=$1 i=$(($1 - 1)) bootstrap=""
  for c in "${cports[@]}"; do bootstrap+="${bootstrap:+,}127.0.0.1:$c"; done
  cat >"$dir/node-$n.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.bootstrap.servers=$bootstrap
listeners=PLAINTEXT://127.0.0.1:${ports[$i]},CONTROLLER://127.0.0.1:${cports[$i]}
advertised.listeners=PLAINTEXT://127.0.0.1:${ports[$i]}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data-$n
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=-1
# A killed node is fenced in 2-5 s instead of 9-12 s (acks=all waits for that).
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=1000
PROPS
}

# Kafka's Uuid text form (16 random bytes, base64url, unpadded), without a JVM start per id.
# Kafka refuses an id whose text starts with "-" (it would read as an option): draw again.
random_uuid() {
  python3 -c 'import base64, uuid
while (text := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(text)'
}

format_all() {
  local cluster voters="" ids=()
  cluster=$(random_uuid)
  for n in 1 2 3; do ids+=("$(random_uuid)"); done
  for n in 1 2 3; do voters+="${voters:+,}$n@127.0.0.1:${cports[$((n - 1))]}:${ids[$((n - 1))]}"; done
  say "formatting three nodes in $dir (one quorum: $voters)"
  local pids=()
  for n in 1 2 3; do
    java_cmd kafka.tools.StorageTool format -t "$cluster" -c "$dir/node-$n.properties" \
      --initial-controllers "$voters" >"$dir/format-$n.log" 2>&1 &
    pids+=($!)
  done
  # Each format's own status: a node whose format failed would only fail later, on start, with
  # "No readable meta.properties files found". One retry covers a JVM that died on a loaded machine.
  for n in 1 2 3; do
    wait "${pids[$((n - 1))]}" && continue
    say "formatting node $n failed; once more (see $dir/format-$n.log)"
    java_cmd kafka.tools.StorageTool format -t "$cluster" -c "$dir/node-$n.properties" \
      --initial-controllers "$voters" >>"$dir/format-$n.log" 2>&1 \
      || { tail -20 "$dir/format-$n.log"; exit 1; }
  done
}

start_node() {
  local n=$1
  if running "$n"; then say "node $n already running"; return 0; fi
  nohup java -Xms128m -Xmx512m -XX:+UseG1GC -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$dir/node-$n.properties" >"$dir/node-$n.log" 2>&1 &
  echo $! >"$(pidfile "$n")"
}

wait_accepting() {
  for _ in $(seq 1 120); do
    local all=1
    for n in "$@"; do accepting "${ports[$((n - 1))]}" || all=0; done
    [ "$all" = 1 ] && return 0
    for n in "$@"; do running "$n" || { say "node $n exited; see $dir/node-$n.log"; tail -20 "$dir/node-$n.log"; exit 1; }; done
    sleep 0.5
  done
  say "not accepting connections after 60 s; see $dir/node-*.log"; exit 1
}

start() {
  KAFKA_PORT=${ports[0]} KAFKA_CONTROLLER_PORT=${cports[0]} "$here/kafka.sh" fetch
  mkdir -p "$dir"
  for n in 1 2 3; do properties "$n"; done
  [ -f "$dir/data-1/meta.properties" ] || format_all
  for n in 1 2 3; do start_node "$n"; done
  wait_accepting 1 2 3
  say "ready on 127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
}

stop() {
  local pids=()
  for n in 1 2 3; do running "$n" && pids+=("$(cat "$(pidfile "$n")")"); done
  if [ "${#pids[@]}" -gt 0 ]; then
    say "stopping ${pids[*]}"
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 40); do
      local alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.5
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
  else say "not running"; fi
  rm -f "$dir"/node-*.pid
}

node_arg() { [[ "${1:-}" =~ ^[123]$ ]] || { echo "usage: $0 kill|start-node 1|2|3" >&2; exit 2; }; }

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) for n in 1 2 3; do if running "$n"; then say "node $n running on 127.0.0.1:${ports[$((n - 1))]}"; else say "node $n stopped"; fi; done ;;
  kill) node_arg "${2:-}"; running "$2" && kill -9 "$(cat "$(pidfile "$2")")"; rm -f "$(pidfile "$2")"; say "node $2 killed" ;;
  start-node) node_arg "${2:-}"; start_node "$2"; wait_accepting "$2"; say "node $2 back" ;;
  *) echo "usage: $0 start|stop|status|kill N|start-node N" >&2; exit 2 ;;
esac
