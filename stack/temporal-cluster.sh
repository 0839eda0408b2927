# shellcheck shell=bash
# The cluster profile's Temporal: the real server (not start-dev), built from the Go module go.temporal.io/server at a
# pinned version with its SQL schema tool, persisting to PostgreSQL (stack/postgres.sh) with 8 history shards, and
# mTLS on every connection to it: a CA, a server and a client certificate generated per install under $TLS_DIR
# (git-ignored). Next to the dev server, on ports of its own, so both can run. Functions only; sourced after lib.sh
# and postgres.sh.
#
#   temporal_cluster_install   build server + sql tool (once; cached under .stack), generate the certificates
#   temporal_cluster_start     schemas, config, start, namespace and search attributes; waits until healthy
#   temporal_cluster_stop      stop it
#   temporal_cluster_status    one line
#   temporal_cluster_cli       the stock `temporal` CLI against it, with the client certificate

TEMPORAL_SERVER_VERSION=v1.32.0 # v1.32.2 needs Go >= 1.26.10; this machine kind has 1.26.8
TEMPORAL_SERVER_DIR="$STACK_DIR/tools/temporal-server"
TEMPORAL_CLUSTER_DIR="$STACK_DIR/temporal-cluster"
TLS_DIR="$STACK_DIR/tls/temporal"
TEMPORAL_CLUSTER_SHARDS=8

# Ports: the frontend's from TEMPORAL_CLUSTER_PORT (default 7333); the others follow it (+1 history, +2 matching,
# +6 worker, +10 HTTP API), and membership ports sit 1000 below each.
_tc_port() { echo "${TEMPORAL_CLUSTER_PORT:-7333}"; }
_tc_addr() { echo "127.0.0.1:$(_tc_port)"; }

_tc_go() {
  command -v go >/dev/null || apt_install golang-go
  command -v go >/dev/null || die "Go is needed to build the Temporal server and was not found after apt-get install golang-go"
}

temporal_cluster_install() {
  postgres_install
  if [ ! -x "$TEMPORAL_SERVER_DIR/server" ] || [ ! -x "$TEMPORAL_SERVER_DIR/sql" ] \
    || ! "$TEMPORAL_SERVER_DIR/server" --version 2>/dev/null | grep -q "${TEMPORAL_SERVER_VERSION#v}"; then
    _tc_go
    say "building the Temporal server and its SQL tool $TEMPORAL_SERVER_VERSION with $(go version | cut -d' ' -f3) (several minutes, once; cached in $TEMPORAL_SERVER_DIR)"
    mkdir -p "$TEMPORAL_SERVER_DIR" "$STACK_DIR/go"
    local t0=$SECONDS
    GOBIN="$TEMPORAL_SERVER_DIR" GOMODCACHE="$STACK_DIR/go/mod" GOCACHE="$STACK_DIR/go/build" GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      go install "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" \
      >>"$LOG_DIR/temporal-server-build.log" 2>&1 || { tail -20 "$LOG_DIR/temporal-server-build.log" >&2; die "building the Temporal server failed (log: $LOG_DIR/temporal-server-build.log)"; }
    say "Temporal server built in $((SECONDS - t0))s"
  fi
  _tc_certificates
}

# A CA, a server certificate for 127.0.0.1/localhost (the frontend and the services between themselves) and a client
# certificate for the platform's processes and people. Generated once per install; keys readable by the owner only.
_tc_certificates() {
  [ -s "$TLS_DIR/client.key" ] && [ -s "$TLS_DIR/server.key" ] && [ -s "$TLS_DIR/ca.pem" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  say "generating a CA and the Temporal server and client certificates in $TLS_DIR"
  mkdir -p "$TLS_DIR"; chmod 700 "$TLS_DIR"
  (
    umask 077; cd "$TLS_DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 825 \
      -subj "/CN=fraud platform local CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    local name ext
    for name in server client; do
      if [ "$name" = server ]; then ext="subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth"
      else ext="extendedKeyUsage=clientAuth"; fi
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=fraud platform $name" 2>/dev/null
      printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n%b\n' "$ext" >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -out "$name.pem" -extfile "$name.ext" 2>/dev/null
      rm -f "$name.csr" "$name.ext"
    done
  ) || die "could not generate the Temporal certificates in $TLS_DIR"
}

# Settings the platform's processes and the stock CLI read (TEMPORAL_TLS_* as `temporal` itself names them).
temporal_cluster_env() {
  cat <<ENV
TEMPORAL_ADDRESS=$(_tc_addr)
TEMPORAL_TLS_CLIENT_CERT_PATH=$TLS_DIR/client.pem
TEMPORAL_TLS_CLIENT_KEY_PATH=$TLS_DIR/client.key
TEMPORAL_TLS_SERVER_CA_CERT_PATH=$TLS_DIR/ca.pem
ENV
}

temporal_cluster_cli() {
  "$(temporal_cli_path)" --disable-config-file --address "$(_tc_addr)" \
    --tls-cert-path "$TLS_DIR/client.pem" --tls-key-path "$TLS_DIR/client.key" --tls-ca-path "$TLS_DIR/ca.pem" "$@"
}

_tc_healthy() { temporal_cluster_cli operator cluster health --command-timeout 3s >/dev/null 2>&1; }

# The two databases and their schemas, embedded in the SQL tool. setup-schema creates the version table (once);
# update-schema brings it to the tool's newest version (a no-op when it is there).
_tc_schemas() {
  local sql="$TEMPORAL_SERVER_DIR/sql" db schema
  for db in temporal temporal_visibility; do
    schema=postgresql/v12/temporal; [ "$db" = temporal ] || schema=postgresql/v12/visibility
    local run=(env SQL_PASSWORD="$POSTGRES_PASSWORD" "$sql" --plugin postgres12 --ep 127.0.0.1 -p "$POSTGRES_PORT" -u "$POSTGRES_USER" --db "$db")
    if ! postgres_psql postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
      "${run[@]}" create-database >>"$LOG_DIR/temporal-cluster.log" 2>&1 || die "could not create database $db (log: $LOG_DIR/temporal-cluster.log)"
    fi
    if ! postgres_psql "$db" -tAc "SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version'" | grep -q 1; then
      "${run[@]}" setup-schema -v 0.0 >>"$LOG_DIR/temporal-cluster.log" 2>&1 || die "setup-schema failed for $db (log: $LOG_DIR/temporal-cluster.log)"
    fi
    "${run[@]}" update-schema --schema-name "$schema" >>"$LOG_DIR/temporal-cluster.log" 2>&1 || die "update-schema failed for $db (log: $LOG_DIR/temporal-cluster.log)"
  done
}

_tc_config() {
  local port; port="$(_tc_port)"
  mkdir -p "$TEMPORAL_CLUSTER_DIR"
  local problems="${TEMPORAL_TASK_PROBLEMS_THRESHOLD:-2}"
  [[ "$problems" =~ ^[0-9]+$ ]] || die "TEMPORAL_TASK_PROBLEMS_THRESHOLD must be a whole number (0 turns the attribute off), got '$problems'"
  cat >"$TEMPORAL_CLUSTER_DIR/dynamicconfig.yaml" <<YAML
frontend.enableServerVersionCheck:
  - value: false
system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute:
  - value: $problems
YAML
  local store db stores=""
  for store in default visibility; do
    db=temporal; [ "$store" = default ] || db=temporal_visibility
    stores+="    $store:
      sql:
        pluginName: postgres12
        databaseName: $db
        connectAddr: \"127.0.0.1:$POSTGRES_PORT\"
        connectProtocol: tcp
        user: \"$POSTGRES_USER\"
        password: \"$POSTGRES_PASSWORD\"
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
"
  done
  stores="${stores%$'\n'}"
  (
    umask 077
    cat >"$TEMPORAL_CLUSTER_DIR/config.yaml" <<YAML
# Written by stack/temporal-cluster.sh on each start (it holds the database password: readable by the owner only).
log:
  stdout: true
  level: ${TEMPORAL_LOG_LEVEL:-warn}
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: $TEMPORAL_CLUSTER_SHARDS
  datastores:
$stores
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  pprof:
    port: 0
  tls:
    # The same mTLS between the services (internode) as from clients to the frontend.
    internode: &mtls
      server:
        requireClientAuth: true
        certFile: $TLS_DIR/server.pem
        keyFile: $TLS_DIR/server.key
        clientCaFiles: [$TLS_DIR/ca.pem]
      client:
        serverName: localhost
        rootCaFiles: [$TLS_DIR/ca.pem]
    frontend: *mtls
services:
  frontend:
    rpc: { grpcPort: $port, membershipPort: $((port - 1000)), bindOnIP: 127.0.0.1, httpPort: $((port + 10)) }
  history:
    rpc: { grpcPort: $((port + 1)), membershipPort: $((port - 999)), bindOnIP: 127.0.0.1 }
  matching:
    rpc: { grpcPort: $((port + 2)), membershipPort: $((port - 998)), bindOnIP: 127.0.0.1 }
  worker:
    rpc: { grpcPort: $((port + 6)), membershipPort: $((port - 994)), bindOnIP: 127.0.0.1 }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:$port"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: $TEMPORAL_CLUSTER_DIR/dynamicconfig.yaml
  pollInterval: 10s
YAML
  )
}

temporal_cluster_start() {
  ensure_env
  temporal_install # the stock CLI, for health checks and the operator API
  temporal_cluster_install
  local addr log="$LOG_DIR/temporal-cluster.log"
  addr="$(_tc_addr)"
  if is_running temporal-cluster; then
    _tc_healthy || die "temporal-cluster is running (pid $(cat "$RUN_DIR/temporal-cluster.pid")) but $addr is not healthy (log: $log)"
    say "temporal-cluster already running on $addr"
    return 0
  fi
  local p base; base="$(_tc_port)"
  for p in "$base" $((base + 1)) $((base + 2)) $((base + 6)) $((base + 10)); do
    port_open 127.0.0.1 "$p" && die "port 127.0.0.1:$p is already taken by another process; not starting temporal-cluster"
  done
  postgres_start
  _postgres_env
  _tc_schemas
  _tc_config
  say "starting the Temporal server $TEMPORAL_SERVER_VERSION on $addr (PostgreSQL 127.0.0.1:$POSTGRES_PORT, $TEMPORAL_CLUSTER_SHARDS history shards, mTLS)"
  printf '\n=== %s temporal-cluster start ===\n' "$(date -u +%FT%TZ)" >>"$log"
  # --allow-no-auth: no authorizer; who may call is decided by the client certificate (requireClientAuth).
  start_bg temporal-cluster "$log" env TEMPORAL_VERSION_CHECK_DISABLED=1 \
    "$TEMPORAL_SERVER_DIR/server" --config-file "$TEMPORAL_CLUSTER_DIR/config.yaml" --allow-no-auth start
  local i
  for i in $(seq 1 180); do
    is_running temporal-cluster || { tail -n 30 "$log" >&2; rm -f "$RUN_DIR/temporal-cluster.pid"; die "the Temporal server exited during startup (log: $log)"; }
    _tc_healthy && break
    [ "$i" -eq 180 ] && { stop_pid temporal-cluster; die "the Temporal server was not healthy on $addr within 90s; stopped it (log: $log)"; }
    sleep 0.5
  done
  # A fresh cluster has no namespace of ours; the search attributes go through the operator API (as on the dev server).
  if ! temporal_cluster_cli operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
    temporal_cluster_cli operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention 72h >>"$log" 2>&1 \
      || { stop_pid temporal-cluster; die "could not create namespace $TEMPORAL_NAMESPACE (temporal-cluster stopped; log: $log)"; }
  fi
  _temporal_load_search_attributes
  local sa out
  for sa in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do
    for i in $(seq 1 40); do
      # A namespace just created is known to every service within a few seconds (their namespace caches refresh).
      out="$(temporal_cluster_cli operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" --name "${sa%%=*}" --type "${sa#*=}" 2>&1)" && break
      [ "$i" -eq 40 ] && { stop_pid temporal-cluster; die "cannot register search attribute $sa (temporal-cluster stopped): $out"; }
      sleep 0.5
    done
  done
  say "temporal-cluster up on $addr (mTLS; client certificate $TLS_DIR/client.pem)"
}

temporal_cluster_stop() {
  if is_running temporal-cluster; then
    stop_pid temporal-cluster
    say "temporal-cluster stopped"
  else
    rm -f "$RUN_DIR/temporal-cluster.pid"
    say "temporal-cluster not running"
  fi
}

temporal_cluster_status() {
  if is_running temporal-cluster; then
    if _tc_healthy; then echo "temporal-cluster: running (pid $(cat "$RUN_DIR/temporal-cluster.pid")) frontend $(_tc_addr), mTLS, PostgreSQL"
    else echo "temporal-cluster: running (pid $(cat "$RUN_DIR/temporal-cluster.pid")) but frontend $(_tc_addr) not healthy"; fi
  else
    echo "temporal-cluster: stopped"
  fi
}
