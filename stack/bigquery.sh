# shellcheck shell=bash
# BigQuery emulator: bqemulator (PyPI `bqemulator`, DuckDB-backed, speaks the BigQuery REST v2 API
# plus the Storage Read/Write gRPC APIs). Sourced after stack/lib.sh; defines functions only.
#
# Settings (optional, from the environment or .env; the port defaults are in stack/lib.sh, PORT_DEFAULTS):
#   BIGQUERY_PORT       REST port                    (default 9050, bqemulator's own default)
#   BIGQUERY_GRPC_PORT  Storage Read/Write gRPC port (default 9060, bqemulator's own default)
#   BIGQUERY_PROJECT    default project id           (default fraud-local)
#   BIGQUERY_PERSIST    1 = DuckDB file under $DATA_DIR/bigquery survives restarts, 0 = in memory (default 1)
#
# Clients: REST endpoint http://127.0.0.1:$BIGQUERY_PORT, any project id, no auth (send no credentials).
# Node: new BigQuery({ projectId, apiEndpoint: 'http://127.0.0.1:9050', authClient: new PassThroughClient() })
# with PassThroughClient from google-auth-library, so that the client never looks for Google credentials.
#
# Offline caveat: bqemulator insists on DuckDB's `spatial` extension at startup and downloads it from
# extensions.duckdb.org, which this machine cannot reach (nor is it allowed to try). bigquery_start therefore
# launches it through a small Python shim that turns autoinstall off and LOADs `spatial` only if it is already
# installed locally; without it GEOGRAPHY / ST_* functions are unavailable and everything else works.
# BQEMU_ENABLE_FORMAT_EXTENSIONS=false likewise skips the `avro` download (Avro load/extract is unavailable).

_bigquery_port() { echo "$BIGQUERY_PORT"; }
_bigquery_grpc_port() { echo "$BIGQUERY_GRPC_PORT"; }
_bigquery_project() { echo "${BIGQUERY_PROJECT:-fraud-local}"; }
# _bigquery_healthy PORT: the emulator answers its liveness probe (python, so no curl needed).
_bigquery_healthy() {
  "$VENV/bin/python" - "$1" 2>/dev/null <<'PY'
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

# The emulator's CLI entry point, wrapped so that startup never tries to download a DuckDB extension.
_bigquery_launcher() {
  cat <<'PY'
import sys
from bqemulator.storage import engine as _engine

def _load_spatial_offline(self):
    conn = self._connection
    # Never fetch extensions from the network (startup or query time).
    conn.execute("SET autoinstall_known_extensions = false")
    try:
        conn.execute("LOAD spatial")  # only succeeds if spatial is already installed locally
    except Exception as exc:  # noqa: BLE001
        _engine._log.warning("duckdb.spatial_unavailable", error=str(exc).splitlines()[0],
                             effect="GEOGRAPHY and ST_* functions are unavailable")

_engine.DuckDBEngine._load_spatial = _load_spatial_offline
from bqemulator.cli import main
sys.exit(main(args=sys.argv[1:], prog_name="bqemulator"))
PY
}

bigquery_install() {
  # numpy: duckdb's create_function(null_handling="special"), used by bqemulator at startup, needs it,
  # but bqemulator does not declare it. duckdb and numpy are pinned to the versions this script was verified with.
  local pins=("bqemulator==1.4.0" "duckdb==2.0.1" "numpy==2.4.6")
  pip_install "${pins[@]}"
  "$VENV/bin/python" -c 'import bqemulator.cli, duckdb, numpy' 2>/dev/null \
    || die "bqemulator did not install cleanly into $VENV (try: $VENV/bin/pip install ${pins[*]})"
}

bigquery_start() {
  local port grpc_port project data="$DATA_DIR/bigquery" persist=()
  port="$(_bigquery_port)"; grpc_port="$(_bigquery_grpc_port)"; project="$(_bigquery_project)"
  if is_running bigquery; then say "bigquery emulator already running on 127.0.0.1:$port"; return 0; fi
  if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import bqemulator' 2>/dev/null; }; then
    die "bqemulator is not installed; run bigquery_install first"
  fi
  local p; for p in "$port" "$grpc_port"; do
    if port_open 127.0.0.1 "$p"; then die "port $p is already taken by another process"; fi
  done
  mkdir -p "$data/uploads" "$data/gcs"
  if [ "${BIGQUERY_PERSIST:-1}" = 1 ]; then persist=(--persistent --data-dir "$data"); else persist=(--ephemeral); fi
  say "starting bigquery emulator on 127.0.0.1:$port (gRPC $grpc_port, project $project)"
  start_bg bigquery "$LOG_DIR/bigquery.log" env \
    BQEMU_ENABLE_FORMAT_EXTENSIONS=false \
    BQEMU_UPLOAD_STAGING_DIR="$data/uploads" \
    BQEMU_GCS_LOCAL_ROOT="$data/gcs" \
    "$VENV/bin/python" -c "$(_bigquery_launcher)" start \
      --rest-host 127.0.0.1 --rest-port "$port" \
      --grpc-host 127.0.0.1 --grpc-port "$grpc_port" \
      --project "$project" "${persist[@]}" \
      --log-format json --log-level info
  wait_port 127.0.0.1 "$port" 60 bigquery
  for _ in $(seq 1 40); do
    _bigquery_healthy "$port" && return 0
    sleep 0.25
  done
  die "bigquery emulator opened its port but /healthz is not answering (log: $LOG_DIR/bigquery.log)"
}

bigquery_stop() {
  if is_running bigquery; then say "stopping bigquery emulator"; fi
  stop_pid bigquery
}

bigquery_status() {
  local port; port="$(_bigquery_port)"
  if is_running bigquery && _bigquery_healthy "$port"; then
    echo "bigquery: running (pid $(cat "$RUN_DIR/bigquery.pid")) REST http://127.0.0.1:$port gRPC 127.0.0.1:$(_bigquery_grpc_port) project $(_bigquery_project)"
    return 0
  fi
  if is_running bigquery; then echo "bigquery: process up (pid $(cat "$RUN_DIR/bigquery.pid")) but not answering on 127.0.0.1:$port"; return 1; fi
  echo "bigquery: stopped"
  return 1
}
