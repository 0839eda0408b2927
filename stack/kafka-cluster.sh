# shellcheck shell=bash
# The cluster profile's Kafka: three KRaft nodes, each a broker and a controller (the controller quorum is the three),
# from the same Maven Central jars as the embedded single node (stack/kafka.sh), on loopback, on ports of their own,
# next to the embedded Kafka. Clients log in with SASL/SCRAM-SHA-512 as a user per service, generated per install; a
# StandardAuthorizer with ACLs decides what each may do (nothing without an ACL). Functions only; sourced after
# lib.sh and kafka.sh (it reuses kafka_install, _kafka_init and _kafka_tool).
#
#   kafka_cluster_install      the Kafka jars (kafka_install) and the users' passwords (generated once, kept)
#   kafka_cluster_start        format the three storage dirs once (one cluster id, the SCRAM users in the bootstrap
#                              metadata), start the nodes not running, wait until all three answer authenticated
#                              requests (a node that refuses every login gets the credentials written again: see
#                              _kc_heal_scram), then make sure of the users, the topics (RF 3, min.insync.replicas 2), ACLs
#   kafka_cluster_stop         SIGTERM all three at once (each flushes and closes its logs), by pid file
#   kafka_cluster_status       one line per node
#   kafka_cluster_env          what points the platform at it (bootstrap servers, the producer's login, credentials)
#   kafka_cluster_admin_props  prints the path of the admin's client properties (for --command-config and the like)
#   kafka_cluster_tool CLASS.. a Kafka CLI class against the cluster as admin (--bootstrap-server, --command-config added)
#
# Ports: clients on KAFKA_CLUSTER_PORT (default 19092) and the next two; controllers on KAFKA_CLUSTER_CONTROLLER_PORT
# (default 19192) and the next two. Everything binds 127.0.0.1.
# Listeners: CLIENT (SASL_PLAINTEXT, SCRAM-SHA-512 only) for the platform and between the brokers (as admin);
# CONTROLLER (SASL_PLAINTEXT, PLAIN, as admin) for the quorum and the brokers' controller channel. SCRAM cannot be used
# there: a KRaft controller has to authenticate its peers before it has read the metadata log that holds the SCRAM
# credentials, so the controller listener takes the static PLAIN login from its JAAS config. It is SASL rather than
# PLAINTEXT because a PLAINTEXT connection is User:ANONYMOUS, which would have to be a super user for the brokers to
# register, and then anything on this machine could create topics, users and ACLs through a controller port.
#
# Users (in $KAFKA_CLUSTER_DIR/credentials, 0600, "user password" lines): admin, the super user (this script, tests,
# benchmarks, people); detector reads payments (group prefix DETECTOR_GROUP_ID, default fraud-detector) and writes the
# DLQ; producer writes payments (the traffic generator and any payments producer). Nobody else writes.
# Layout: configs, credentials and the admin's client properties in $STACK_DIR/kafka-cluster (0700), data in
# $DATA_DIR/kafka-cluster/N, log4j logs in $LOG_DIR/kafka-cluster-N.log, JVM stdout/stderr in $LOG_DIR/kafka-cluster-N.out,
# pid files kafka-cluster-1..3.

KAFKA_CLUSTER_DIR="$STACK_DIR/kafka-cluster"
KAFKA_CLUSTER_CREDENTIALS="$KAFKA_CLUSTER_DIR/credentials"
KAFKA_CLUSTER_USERS=(admin detector producer)
KAFKA_CLUSTER_NODES=(1 2 3)

_kc_port() { echo $((${KAFKA_CLUSTER_PORT:-19092} + $1 - 1)); }
_kc_controller_port() { echo $((${KAFKA_CLUSTER_CONTROLLER_PORT:-$((${KAFKA_CLUSTER_PORT:-19092} + 100))} + $1 - 1)); }
_kc_bootstrap() {
  local n list=()
  for n in "${KAFKA_CLUSTER_NODES[@]}"; do list+=("127.0.0.1:$(_kc_port "$n")"); done
  (IFS=,; echo "${list[*]}")
}
_kc_password() { awk -v u="$1" '$1 == u { print $2 }' "$KAFKA_CLUSTER_CREDENTIALS"; }
_kc_data() { echo "$DATA_DIR/kafka-cluster/$1"; }
_kc_formatted() { [ -f "$(_kc_data "$1")/meta.properties" ]; }

# The users' passwords: a line is added for every user of KAFKA_CLUSTER_USERS that has none, existing ones are kept
# (the cluster's metadata holds them). A lost file cannot be regenerated for a formatted cluster.
_kc_credentials() {
  mkdir -p "$KAFKA_CLUSTER_DIR"; chmod 700 "$KAFKA_CLUSTER_DIR"
  if [ ! -f "$KAFKA_CLUSTER_CREDENTIALS" ]; then
    local n
    for n in "${KAFKA_CLUSTER_NODES[@]}"; do
      _kc_formatted "$n" && die "$KAFKA_CLUSTER_CREDENTIALS is missing but $(_kc_data "$n") holds a cluster made with its passwords; stop kafka-cluster and remove $DATA_DIR/kafka-cluster to start over"
    done
  fi
  local u pw missing=()
  for u in "${KAFKA_CLUSTER_USERS[@]}"; do
    [ -f "$KAFKA_CLUSTER_CREDENTIALS" ] && [ -n "$(_kc_password "$u")" ] && continue
    missing+=("$u")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "generating the Kafka SCRAM password of ${missing[*]} in $KAFKA_CLUSTER_CREDENTIALS"
  (
    umask 077
    for u in "${missing[@]}"; do
      pw="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      [ ${#pw} -eq 48 ] || exit 1
      printf '%s %s\n' "$u" "$pw"
    done >>"$KAFKA_CLUSTER_CREDENTIALS"
  ) || die "could not generate the Kafka passwords from /dev/urandom"
  chmod 600 "$KAFKA_CLUSTER_CREDENTIALS"
}

# The admin's client properties, for every CLI call of this script (and other scripts: kafka_cluster_admin_props).
_kc_admin_props() {
  local f="$KAFKA_CLUSTER_DIR/admin.properties"
  (umask 077 && cat >"$f") <<EOF
# Generated by stack/kafka-cluster.sh: the admin's login to the cluster profile's Kafka. Holds a password: never commit.
bootstrap.servers=$(_kc_bootstrap)
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(_kc_password admin)";
request.timeout.ms=10000
default.api.timeout.ms=20000
EOF
  echo "$f"
}

kafka_cluster_install() {
  kafka_install
  _kc_credentials
}

# A node's broker config and log4j config, regenerated on each start. 0600: it holds the admin password.
_kc_write_config() {
  local n="$1" conf="$KAFKA_CLUSTER_DIR/node-$1.properties" admin_pw voters=() i
  admin_pw="$(_kc_password admin)"
  for i in "${KAFKA_CLUSTER_NODES[@]}"; do voters+=("$i@127.0.0.1:$(_kc_controller_port "$i")"); done
  (umask 077 && cat >"$conf") <<EOF
# Generated by stack/kafka-cluster.sh: node $n of the cluster profile's Kafka. Edits are overwritten on start.
# Holds the admin password: never commit.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=CLIENT://127.0.0.1:$(_kc_port "$n"),CONTROLLER://127.0.0.1:$(_kc_controller_port "$n")
advertised.listeners=CLIENT://127.0.0.1:$(_kc_port "$n")
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT

# Clients and the brokers between themselves: SCRAM-SHA-512 only; the brokers log in as admin.
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
# The quorum and the brokers' controller channel: PLAIN (see the header of stack/kafka-cluster.sh), admin only.
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw";

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false

log.dirs=$(_kc_data "$n")
# A metadata snapshot after 5 minutes of changes instead of an hour: a restarted node then loads a snapshot rather
# than replaying the metadata log from its start (where 3.9.2 once lost the SCRAM credentials: _kc_heal_scram).
metadata.log.max.snapshot.interval.ms=300000
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
# 10 instead of 50: the first consumer group on a fresh cluster comes up faster.
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
# Small thread pools and buffers: three nodes share 2 cores and a small heap with everything else. The cleaner's
# dedupe buffer is on the heap (default 128 MB, a third of it); 16 MB is plenty for __consumer_offsets.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
EOF
  cat >"$KAFKA_CLUSTER_DIR/log4j-$n.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$LOG_DIR/kafka-cluster-$n.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
# INFO: the authorizer logs every denied request (allowed ones are DEBUG), which is what one looks for here.
log4j.logger.kafka.authorizer.logger=INFO
EOF
  echo "$conf"
}

# kafka_cluster_tool CLASS ARGS...: a Kafka CLI class as admin against the cluster, killed after
# KAFKA_CLUSTER_TOOL_TIMEOUT seconds (default 120): some of them (BrokerApiVersionsCommand) retry a refused login forever.
kafka_cluster_tool() {
  _kafka_init
  local cls="$1"; shift
  local args=("$@")
  case " $* " in *" --bootstrap-server "* | *" --bootstrap-server="*) ;; *) args=(--bootstrap-server "$(_kc_bootstrap)" "${args[@]}") ;; esac
  # In front: kafka-metadata-quorum (argparse4j) takes them only before its subcommand.
  case " $* " in *" --command-config "* | *" --command-config="*) ;; *) args=(--command-config "$KAFKA_CLUSTER_DIR/admin.properties" "${args[@]}") ;; esac
  # timeout runs programs, not functions: _kafka_tool goes along as its definition.
  KAFKA_HOME="$KAFKA_HOME" KAFKA_LIBS="$KAFKA_LIBS" timeout -k 5 "${KAFKA_CLUSTER_TOOL_TIMEOUT:-120}" \
    bash -c "$(declare -f _kafka_tool)"'; _kafka_tool "$@"' _kafka_tool "$cls" "${args[@]}"
}

# The cluster id: the one the formatted nodes have, else the one recorded at the first format, else a new one
# (what StorageTool random-uuid prints: 16 random bytes in URL-safe base64, not starting with '-').
_kc_cluster_id() {
  local n id=""
  for n in "${KAFKA_CLUSTER_NODES[@]}"; do
    _kc_formatted "$n" && id="$(sed -n 's/^cluster\.id=//p' "$(_kc_data "$n")/meta.properties")" && [ -n "$id" ] && break
  done
  [ -n "$id" ] || id="$(cat "$KAFKA_CLUSTER_DIR/cluster.id" 2>/dev/null || true)"
  while [ -z "$id" ] || [ "${id:0:1}" = - ]; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  echo "$id" >"$KAFKA_CLUSTER_DIR/cluster.id"
  echo "$id"
}

# _kc_format N...: format the given nodes' storage (in parallel), each with every user's SCRAM credential in the
# bootstrap metadata, so the brokers can authenticate each other (as admin) from their first start.
_kc_format() {
  local id n u scram=() pids=() rc=0
  id="$(_kc_cluster_id)"
  for u in "${KAFKA_CLUSTER_USERS[@]}"; do scram+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$(_kc_password "$u")]"); done
  say "formatting kafka-cluster storage of node(s) $* in $DATA_DIR/kafka-cluster (cluster id $id)"
  for n in "$@"; do
    mkdir -p "$(_kc_data "$n")"
    _kafka_tool kafka.tools.StorageTool format -t "$id" -c "$KAFKA_CLUSTER_DIR/node-$n.properties" "${scram[@]}" \
      >"$LOG_DIR/kafka-cluster-format-$n.log" 2>&1 &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || rc=1; done
  [ $rc -eq 0 ] || die "formatting the kafka-cluster storage failed (logs: $LOG_DIR/kafka-cluster-format-*.log)"
}

# _kc_node_check N: one authenticated Metadata request (a topic list) to node N alone. Prints ok, auth (the node
# refuses the admin's SCRAM login) or down (anything else: not listening, not caught up, timed out).
_kc_node_check() {
  local out
  if out="$(KAFKA_CLUSTER_TOOL_TIMEOUT=40 kafka_cluster_tool org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "127.0.0.1:$(_kc_port "$1")" --list 2>&1)"; then echo ok
  elif grep -q 'SaslAuthenticationException\|Authentication failed' <<<"$out"; then echo auth
  else echo down; fi
}

# Kafka 3.9.2 sometimes (seen once, after a SIGKILL and restart) brings a node back without any SCRAM credential in
# its broker's metadata image, although its metadata log holds them: it then refuses every login, the other brokers'
# replica fetchers included, and writes that state into its next metadata snapshots. Writing the credentials again
# (same passwords) puts fresh records in the log, which the node applies: it takes logins again. Through a node that
# takes the admin's login; the admin client may pick the broken node for its metadata, hence the retries.
_kc_heal_scram() {
  local via="$1" u pw out="" i
  shift
  say "kafka-cluster: node(s) $* refuse every SCRAM login (Kafka lost the credentials there); writing the credentials again through node $via"
  for u in "${KAFKA_CLUSTER_USERS[@]}"; do
    pw="$(_kc_password "$u")"
    for i in 1 2 3 4 5; do
      out="$(KAFKA_CLUSTER_TOOL_TIMEOUT=40 kafka_cluster_tool kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$(_kc_port "$via")" \
        --alter --entity-type users --entity-name "$u" --add-config "SCRAM-SHA-512=[password=$pw]" 2>&1)" && break
      [ "$i" -lt 5 ] || say "warning: kafka-cluster: could not write the credential of $u again: $(tail -1 <<<"${out//$pw/<password>}")"
      sleep 1
    done
  done
}

# Ready when every node answers an authenticated Metadata request of its own (a node only opens its client listener
# once it is registered, caught up and unfenced). A node that keeps refusing the admin's login is healed (above).
_kc_wait_ready() {
  local deadline=$((SECONDS + ${1:-180})) n st healthy bad authfails=0 tmp pids
  for n in "${KAFKA_CLUSTER_NODES[@]}"; do
    until port_open 127.0.0.1 "$(_kc_port "$n")"; do
      is_running "kafka-cluster-$n" || die "kafka-cluster node $n exited during startup (logs: $LOG_DIR/kafka-cluster-$n.log, $LOG_DIR/kafka-cluster-$n.out)"
      [ $SECONDS -lt $deadline ] || die "kafka-cluster node $n did not open 127.0.0.1:$(_kc_port "$n") in time (log: $LOG_DIR/kafka-cluster-$n.log)"
      sleep 0.5
    done
  done
  tmp="$(mktemp -d)"
  while :; do
    # Wait for these jobs by pid: a bare `wait` would also wait for the nodes this shell has just started.
    pids=()
    for n in "${KAFKA_CLUSTER_NODES[@]}"; do _kc_node_check "$n" >"$tmp/$n" & pids+=($!); done
    wait "${pids[@]}"
    healthy=""; bad=(); st=""
    for n in "${KAFKA_CLUSTER_NODES[@]}"; do
      case "$(cat "$tmp/$n")" in
        ok) healthy="${healthy:-$n}" ;;
        auth) bad+=("$n"); st+=" $n:refuses-logins" ;;
        *) st+=" $n:not-ready" ;;
      esac
    done
    [ -z "$st" ] && { rm -rf "$tmp"; return 0; }
    if [ ${#bad[@]} -gt 0 ]; then
      authfails=$((authfails + 1))
      # Twice in a row, and a node to go through: heal (once a minute at most).
      if [ $authfails -ge 2 ] && [ -n "$healthy" ]; then _kc_heal_scram "$healthy" "${bad[@]}"; authfails=-20; fi
    else authfails=0; fi
    for n in "${KAFKA_CLUSTER_NODES[@]}"; do
      is_running "kafka-cluster-$n" || { rm -rf "$tmp"; die "kafka-cluster node $n exited during startup (logs: $LOG_DIR/kafka-cluster-$n.log, $LOG_DIR/kafka-cluster-$n.out)"; }
    done
    [ $SECONDS -lt $deadline ] || { rm -rf "$tmp"; die "kafka-cluster: not every node answers authenticated requests (${st# }; logs: $LOG_DIR/kafka-cluster-*.log)"; }
    sleep 1
  done
}

# SCRAM credentials for users that have none yet (a user added to KAFKA_CLUSTER_USERS after the format). The password
# is on this one command line for the JVM's life (ConfigCommand's --add-config-file turns SCRAM-SHA-512 into
# SCRAM_SHA_512 and rejects it); it is kept out of the error message.
_kc_ensure_users() {
  local have u pw out
  have="$(kafka_cluster_tool kafka.admin.ConfigCommand --describe --entity-type users 2>&1)" \
    || die "kafka-cluster: could not list the SCRAM users: $have"
  for u in "${KAFKA_CLUSTER_USERS[@]}"; do
    grep -q "user-principal '$u' are .*SCRAM-SHA-512=" <<<"$have" && continue
    say "kafka-cluster: adding the SCRAM-SHA-512 credential of $u"
    pw="$(_kc_password "$u")"
    out="$(kafka_cluster_tool kafka.admin.ConfigCommand --alter --entity-type users --entity-name "$u" \
      --add-config "SCRAM-SHA-512=[password=$pw]" 2>&1)" || die "kafka-cluster: could not add the SCRAM credential of $u: ${out//$pw/<password>}"
  done
}

# The topics, from one describe of all of them: created when missing (RF 3, min.insync.replicas 2), min.insync.replicas
# set again when it differs. Sets KC_URP to the number of under-replicated partitions that describe saw.
_kc_ensure_topics() {
  local desc topic parts line
  desc="$(kafka_cluster_tool org.apache.kafka.tools.TopicCommand --describe 2>&1)" \
    || die "kafka-cluster: could not describe the topics: $desc"
  KC_URP="$(awk '$0 ~ /Partition: / { r = $0; sub(/.*Replicas: /, "", r); sub(/[ \t].*/, "", r);
    i = $0; sub(/.*Isr: /, "", i); sub(/[ \t].*/, "", i); if (split(r, a, ",") > split(i, b, ",")) n++ } END { print n + 0 }' <<<"$desc")"
  for topic in "$PAYMENTS_TOPIC:6" "$DLQ_TOPIC:3"; do
    parts="${topic##*:}"; topic="${topic%:*}"
    line="$(awk -v t="$topic" '$1 == "Topic:" && $2 == t && $3 == "TopicId:"' <<<"$desc")"
    if [ -z "$line" ]; then
      say "kafka-cluster: creating topic $topic ($parts partitions, replication factor 3, min.insync.replicas 2)"
      kafka_cluster_tool org.apache.kafka.tools.TopicCommand --create --if-not-exists --topic "$topic" \
        --partitions "$parts" --replication-factor 3 --config min.insync.replicas=2 >/dev/null \
        || die "kafka-cluster: could not create topic $topic"
      continue
    fi
    [[ "$line" == *"ReplicationFactor: 3"* ]] \
      || say "warning: kafka-cluster topic $topic exists with another replication factor than 3: $line"
    if [[ ! "$line" =~ (Configs:|,)[[:space:]]*min\.insync\.replicas=2(,|$|[[:space:]]) ]]; then
      say "kafka-cluster: setting min.insync.replicas=2 on topic $topic"
      kafka_cluster_tool kafka.admin.ConfigCommand --alter --entity-type topics --entity-name "$topic" \
        --add-config min.insync.replicas=2 >/dev/null || die "kafka-cluster: could not set min.insync.replicas on $topic"
    fi
  done
}

# The ACLs, from one list of all of them; each group below is added (AclCommand --add is idempotent anyway) only when
# one of its entries is missing. An entry: RESOURCE_TYPE NAME PATTERN PRINCIPAL OPERATION (all ALLOW, host *).
_kc_ensure_acls() {
  local have group="${DETECTOR_GROUP_ID:-fraud-detector}" spec want entry missing op args
  have="$(kafka_cluster_tool kafka.admin.AclCommand --list 2>&1)" || die "kafka-cluster: could not list the ACLs: $have"
  have="$(awk '
    /^Current ACLs for resource/ {
      t = $0; sub(/.*resourceType=/, "", t); sub(/,.*/, "", t)
      n = $0; sub(/.*, name=/, "", n); sub(/, patternType=.*/, "", n)
      p = $0; sub(/.*patternType=/, "", p); sub(/\).*/, "", p) }
    /\(principal=/ && /permissionType=ALLOW/ && /host=\*,/ {
      u = $0; sub(/.*principal=/, "", u); sub(/,.*/, "", u)
      o = $0; sub(/.*operation=/, "", o); sub(/,.*/, "", o)
      print t, n, p, u, o }' <<<"$have")"
  # principal | resource options (AclCommand) | resource as listed | operations
  local specs=(
    "User:detector|--topic $PAYMENTS_TOPIC|TOPIC $PAYMENTS_TOPIC LITERAL|Read Describe"
    "User:detector|--topic $DLQ_TOPIC|TOPIC $DLQ_TOPIC LITERAL|Write Describe"
    "User:detector|--group $group --resource-pattern-type prefixed|GROUP $group PREFIXED|Read"
    "User:producer|--topic $PAYMENTS_TOPIC|TOPIC $PAYMENTS_TOPIC LITERAL|Write Describe"
    "User:producer|--cluster|CLUSTER kafka-cluster LITERAL|IdempotentWrite"
  )
  for spec in "${specs[@]}"; do
    IFS='|' read -r -a want <<<"$spec"
    missing=""
    for op in ${want[3]}; do
      case "$op" in IdempotentWrite) op=IDEMPOTENT_WRITE ;; *) op="${op^^}" ;; esac
      entry="${want[2]} ${want[0]} $op"
      grep -qxF "$entry" <<<"$have" || missing=1
    done
    [ -n "$missing" ] || continue
    args=(--add --allow-principal "${want[0]}")
    for op in ${want[3]}; do args+=(--operation "$op"); done
    # shellcheck disable=SC2206  # the resource options are words without spaces
    args+=(${want[1]})
    say "kafka-cluster: ACL ${want[0]} ${want[3]} on ${want[2]}"
    kafka_cluster_tool kafka.admin.AclCommand "${args[@]}" >/dev/null || die "kafka-cluster: could not add the ACL ${want[0]} ${want[3]} on ${want[2]}"
  done
}

# After a node (re)joined: wait until its replicas are back in the ISR of every partition (bounded; a warning if not).
_kc_wait_isr() {
  local deadline=$((SECONDS + 90)) out
  while :; do
    out="$(kafka_cluster_tool org.apache.kafka.tools.TopicCommand --describe --under-replicated-partitions 2>&1)" && [ -z "$out" ] && return 0
    [ $SECONDS -lt $deadline ] || { say "warning: kafka-cluster still has under-replicated partitions after 90s: $(head -3 <<<"$out" | tr '\n' ' ')"; return 0; }
    sleep 2
  done
}

kafka_cluster_start() {
  _kafka_init
  [ "$(cat "$KAFKA_LIBS/.version" 2>/dev/null)" = "$KAFKA_VERSION" ] || kafka_install
  _kc_credentials
  _kc_admin_props >/dev/null
  local t0 n p started=() unformatted=() fresh=""
  t0=$(date +%s%N)
  for n in "${KAFKA_CLUSTER_NODES[@]}"; do
    is_running "kafka-cluster-$n" && continue
    for p in "$(_kc_port "$n")" "$(_kc_controller_port "$n")"; do
      port_open 127.0.0.1 "$p" && die "port 127.0.0.1:$p is already taken by a process this stack did not start; not starting kafka-cluster node $n (move KAFKA_CLUSTER_PORT / KAFKA_CLUSTER_CONTROLLER_PORT in .env)"
    done
    _kc_write_config "$n" >/dev/null
    _kc_formatted "$n" || unformatted+=("$n")
    started+=("$n")
  done
  if [ ${#unformatted[@]} -gt 0 ]; then
    [ ${#unformatted[@]} -eq ${#KAFKA_CLUSTER_NODES[@]} ] && fresh=1
    [ -n "$fresh" ] || say "warning: kafka-cluster node(s) ${unformatted[*]} have no storage; formatting them to join the existing cluster (they copy everything from the others)"
    _kc_format "${unformatted[@]}"
  fi
  for n in "${started[@]}"; do
    say "starting kafka-cluster node $n on 127.0.0.1:$(_kc_port "$n") (controller 127.0.0.1:$(_kc_controller_port "$n"))"
    # shellcheck disable=SC2086  # KAFKA_CLUSTER_HEAP_OPTS is a list of JVM flags
    start_bg "kafka-cluster-$n" "$LOG_DIR/kafka-cluster-$n.out" java ${KAFKA_CLUSTER_HEAP_OPTS:--Xmx384m -Xms128m} \
      -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:ParallelGCThreads=2 \
      -XX:ConcGCThreads=1 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$KAFKA_CLUSTER_DIR/log4j-$n.properties" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CLUSTER_DIR/node-$n.properties"
  done
  _kc_wait_ready 180
  _kc_ensure_users
  KC_URP=0
  _kc_ensure_topics
  _kc_ensure_acls
  # Fresh cluster: a group lookup makes the brokers create __consumer_offsets now, so the first consumer does not
  # hit "group coordinator not available" retries.
  if [ -n "$fresh" ]; then
    kafka_cluster_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --describe --group stack-warmup >/dev/null 2>&1 || true
  fi
  [ "$KC_URP" -eq 0 ] || { say "kafka-cluster: $KC_URP under-replicated partition(s); waiting for the ISR to fill"; _kc_wait_isr; }
  say "kafka-cluster ready on $(_kc_bootstrap) (topics $PAYMENTS_TOPIC, $DLQ_TOPIC; users ${KAFKA_CLUSTER_USERS[*]}) in $(( ($(date +%s%N) - t0) / 1000000 ))ms"
}

kafka_cluster_stop() {
  local n
  # All at once: stopped one by one, the last two would wait for a controller quorum that is already gone.
  local pids=()
  for n in "${KAFKA_CLUSTER_NODES[@]}"; do
    if is_running "kafka-cluster-$n"; then say "stopping kafka-cluster node $n"; fi
    stop_pid "kafka-cluster-$n" & pids+=($!)
  done
  wait "${pids[@]}"
  for n in "${KAFKA_CLUSTER_NODES[@]}"; do
    if _kc_formatted "$n" && [ ! -f "$(_kc_data "$n")/.kafka_cleanshutdown" ]; then
      say "warning: kafka-cluster node $n did not shut down cleanly; it will recover its logs on the next start"
    fi
  done
}

kafka_cluster_status() {
  local n state
  for n in "${KAFKA_CLUSTER_NODES[@]}"; do
    if is_running "kafka-cluster-$n"; then
      state="listening"; port_open 127.0.0.1 "$(_kc_port "$n")" || state="not listening yet"
      echo "kafka-cluster-$n  running  pid $(cat "$RUN_DIR/kafka-cluster-$n.pid")  127.0.0.1:$(_kc_port "$n") $state  controller 127.0.0.1:$(_kc_controller_port "$n")"
    else
      echo "kafka-cluster-$n  stopped  127.0.0.1:$(_kc_port "$n")"
    fi
  done
}

kafka_cluster_env() {
  _kc_credentials >&2
  cat <<ENV
KAFKA_BOOTSTRAP_SERVERS=$(_kc_bootstrap)
KAFKA_SASL_MECHANISM=scram-sha-512
KAFKA_SASL_USERNAME=producer
KAFKA_SASL_PASSWORD=$(_kc_password producer)
FRAUD_KAFKA_CREDENTIALS=$KAFKA_CLUSTER_CREDENTIALS
ENV
}

kafka_cluster_admin_props() {
  _kc_credentials >&2
  _kc_admin_props
}
