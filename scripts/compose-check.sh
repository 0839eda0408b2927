#!/usr/bin/env bash
# Validates docker-compose.yml with Compose's own loader (compose-go), without a container engine: builds
# tools/compose-check once into .stack/tools/compose-check (again when its sources change), then loads the file
# for each profile with an env file of placeholders, so that interpolation, the Compose schema, normalization and
# the consistency checks all run as in `docker compose up`. test/integration/compose.test.ts runs it (so CI does).
#
#   bash scripts/compose-check.sh            both profiles: dev, with what `./dev up` writes into .env (nothing of
#                                            prod's), and prod, with every variable the operator provides
#   bash scripts/compose-check.sh ARGS...    the tool itself with ARGS (-f FILE, --env-file FILE, --profile NAME,
#                                            --json), run from the repository root
#   bash scripts/compose-check.sh --env dev|prod   print the path of that profile's placeholder env file
#
# The env files are written under .stack/tools/compose-check.env/ on each run; the values are placeholders, never
# secrets. Exit 1 when the file does not load.
set -euo pipefail
# shellcheck source=stack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../stack/lib.sh"
cd "$ROOT"

SRC="$ROOT/tools/compose-check"
TOOL="$STACK_DIR/tools/compose-check"
ENV_DIR="$STACK_DIR/tools/compose-check.env"

# Rebuilt when main.go, go.mod, go.sum or the Go release change (a hash of them next to the binary).
build() {
  command -v go >/dev/null || apt_install golang-go
  command -v go >/dev/null || die "Go is needed to build tools/compose-check and was not found after apt-get install golang-go"
  local stamp
  stamp="$(cat "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" <(go version) | sha256sum | cut -d' ' -f1)"
  [ -x "$TOOL" ] && [ "$(cat "$TOOL.stamp" 2>/dev/null)" = "$stamp" ] && return 0
  say "building tools/compose-check with $(go version | cut -d' ' -f3) (once; cached in $TOOL)"
  mkdir -p "$STACK_DIR/tools" "$STACK_DIR/go"
  local t0=$SECONDS tmp="$TOOL.$$.tmp"
  (
    cd "$SRC"
    GOMODCACHE="$STACK_DIR/go/mod" GOCACHE="$STACK_DIR/go/build" GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local \
      go build -mod=readonly -trimpath -o "$tmp" .
  ) || { rm -f "$tmp"; die "building tools/compose-check failed"; }
  mv -f "$tmp" "$TOOL"
  echo "$stamp" >"$TOOL.stamp"
  say "tools/compose-check built in $((SECONDS - t0))s"
}

# What a .env written by ./dev up holds (stack/lib.sh: ENV_DEFAULTS, the Redis password, the console's secret) and
# the line that makes dev the default profile. No variable of the prod profile.
write_env_files() {
  mkdir -p "$ENV_DIR"
  # Each through a temporary file and a rename: a run in parallel never reads a half-written one.
  {
    printf '%s\n' "${ENV_DEFAULTS[@]}"
    echo REDIS_PASSWORD=placeholder-REDIS_PASSWORD
    echo CONSOLE_SESSION_SECRET=placeholder-CONSOLE_SESSION_SECRET-0000000000000000
  } >"$ENV_DIR/dev.env.$$"
  # The operator's env file for the prod profile: every variable it must provide (README.md, Docker Compose).
  cat >"$ENV_DIR/prod.env.$$" <<'ENV'
COMPOSE_PROFILES=prod
FRAUDWATCH_PROFILE=prod
TEMPORAL_TLS_DIR=/srv/fraudwatch/tls
REDIS_ACL_FILE=/srv/fraudwatch/redis-users.acl
POSTGRES_PASSWORD=placeholder-POSTGRES_PASSWORD
KAFKA_ADMIN_PASSWORD=placeholder-KAFKA_ADMIN_PASSWORD
KAFKA_DETECTOR_PASSWORD=placeholder-KAFKA_DETECTOR_PASSWORD
KAFKA_PRODUCER_PASSWORD=placeholder-KAFKA_PRODUCER_PASSWORD
REDIS_PASSWORD=placeholder-REDIS_PASSWORD
REDIS_DETECTOR_PASSWORD=placeholder-REDIS_DETECTOR_PASSWORD
REDIS_WORKER_PASSWORD=placeholder-REDIS_WORKER_PASSWORD
REDIS_CONSOLE_PASSWORD=placeholder-REDIS_CONSOLE_PASSWORD
REDIS_REPLICATOR_PASSWORD=placeholder-REDIS_REPLICATOR_PASSWORD
REDIS_SENTINEL_USER_PASSWORD=placeholder-REDIS_SENTINEL_USER_PASSWORD
REDIS_SENTINEL_PASSWORD=placeholder-REDIS_SENTINEL_PASSWORD
CONSOLE_SESSION_SECRET=placeholder-CONSOLE_SESSION_SECRET-0000000000000000
ENV
  mv -f "$ENV_DIR/dev.env.$$" "$ENV_DIR/dev.env"
  mv -f "$ENV_DIR/prod.env.$$" "$ENV_DIR/prod.env"
}

build
write_env_files

case "${1:-}" in
  "")
    rc=0
    for profile in dev prod; do
      echo "== $profile (env: ${ENV_DIR#"$ROOT/"}/$profile.env)"
      # No --profile: the env file's COMPOSE_PROFILES selects it, as .env does for `docker compose up`.
      "$TOOL" -f docker-compose.yml --env-file "$ENV_DIR/$profile.env" || rc=1
    done
    exit "$rc"
    ;;
  --env)
    case "${2:-}" in dev | prod) echo "$ENV_DIR/$2.env" ;; *) die "usage: scripts/compose-check.sh --env dev|prod" ;; esac
    ;;
  *) exec "$TOOL" "$@" ;;
esac
