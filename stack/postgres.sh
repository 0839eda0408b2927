# shellcheck shell=bash
# PostgreSQL from Debian's packages, for the cluster profile's Temporal server: one cluster under $DATA_DIR/postgres,
# listening on 127.0.0.1 only, password (scram-sha-256) authentication, with a role and a password generated per
# install into .env (POSTGRES_USER, POSTGRES_PASSWORD). Functions only; sourced after lib.sh.
#
#   postgres_install   apt-install postgresql when its binaries are missing (the system cluster is stopped: we run our own)
#   postgres_start     initdb on first use, then start on $POSTGRES_PORT and wait until it accepts connections
#   postgres_stop      stop it (pg_ctl stop -m fast)
#   postgres_status    one line: running or stopped
#   postgres_psql      psql as the platform's role, against database $1 (default postgres)

POSTGRES_DATA="$DATA_DIR/postgres"

# The newest installed server's binaries (Debian keeps them in /usr/lib/postgresql/<major>/bin).
_postgres_bin() {
  local d
  d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [ -n "$d" ] && [ -x "$d/initdb" ] || return 1
  echo "$d"
}

postgres_install() {
  _postgres_bin >/dev/null && command -v psql >/dev/null && return 0
  apt_install postgresql
  # The package creates and starts a system cluster on 5432; stop it through its own tool, by cluster name.
  if command -v pg_lsclusters >/dev/null; then
    local ver name
    while read -r ver name _; do
      if [ -n "$ver" ]; then as_root pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; fi
    done < <(pg_lsclusters -h 2>/dev/null)
  fi
  _postgres_bin >/dev/null || die "installed postgresql but found no server binaries under /usr/lib/postgresql"
}

# Settings kept in .env: the port (a default) and a role with a generated password (once per install).
_postgres_env() {
  ensure_env
  : "${POSTGRES_PORT:=5433}"
  export POSTGRES_PORT
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    local pw
    pw="$(random_hex 24)" || exit 1
    printf 'POSTGRES_USER=temporal\nPOSTGRES_PASSWORD=%s\nPOSTGRES_PORT=%s\n' "$pw" "$POSTGRES_PORT" >>"$ROOT/.env"
    export POSTGRES_USER=temporal POSTGRES_PASSWORD="$pw"
  fi
  : "${POSTGRES_USER:=temporal}"
  export POSTGRES_USER
}

# initdb runs as a non-root OS user (it refuses root): the files belong to that user.
_postgres_os_user() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }
_postgres_as() {
  local u; u="$(_postgres_os_user)"
  if [ "$(id -un)" = "$u" ]; then "$@"; else as_root runuser -u "$u" -- "$@"; fi
}

postgres_start() {
  _postgres_env
  local bin; bin="$(_postgres_bin)" || die "PostgreSQL is not installed (bash stack/stack.sh install postgres)"
  if [ ! -f "$POSTGRES_DATA/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in $POSTGRES_DATA"
    mkdir -p "$POSTGRES_DATA"
    [ "$(id -u)" -ne 0 ] || chown "$(_postgres_os_user)" "$POSTGRES_DATA"
    chmod 700 "$POSTGRES_DATA"
    local pwfile; pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    [ "$(id -u)" -ne 0 ] || chown "$(_postgres_os_user)" "$pwfile"
    _postgres_as "$bin/initdb" -D "$POSTGRES_DATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$LOG_DIR/postgres.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed (log: $LOG_DIR/postgres.log)"; }
    rm -f "$pwfile"
  fi
  if _postgres_as "$bin/pg_ctl" -D "$POSTGRES_DATA" status >/dev/null 2>&1; then return 0; fi
  # Loopback only; the socket lives in our own run dir (not /var/run/postgresql, which may not exist).
  mkdir -p "$RUN_DIR/postgres"
  touch "$LOG_DIR/postgres.log"
  [ "$(id -u)" -ne 0 ] || chown "$(_postgres_os_user)" "$RUN_DIR/postgres" "$LOG_DIR/postgres.log"
  _postgres_as "$bin/pg_ctl" -D "$POSTGRES_DATA" -l "$LOG_DIR/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $POSTGRES_PORT -c unix_socket_directories=$RUN_DIR/postgres -c max_connections=200" start >/dev/null \
    || die "PostgreSQL did not start (log: $LOG_DIR/postgres.log)"
}

postgres_stop() {
  local bin; bin="$(_postgres_bin)" || return 0
  [ -f "$POSTGRES_DATA/PG_VERSION" ] || return 0
  _postgres_as "$bin/pg_ctl" -D "$POSTGRES_DATA" status >/dev/null 2>&1 || return 0
  _postgres_as "$bin/pg_ctl" -D "$POSTGRES_DATA" -m fast -w stop >/dev/null
}

postgres_status() {
  local bin; bin="$(_postgres_bin)" || { echo "postgres: not installed"; return 1; }
  if [ -f "$POSTGRES_DATA/PG_VERSION" ] && _postgres_as "$bin/pg_ctl" -D "$POSTGRES_DATA" status >/dev/null 2>&1; then
    echo "postgres: running (127.0.0.1:${POSTGRES_PORT:-5433}, $("$bin/postgres" --version))"
  else
    echo "postgres: stopped"; return 1
  fi
}

postgres_psql() {
  _postgres_env
  PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "${1:-postgres}" -v ON_ERROR_STOP=1 "${@:2}"
}
