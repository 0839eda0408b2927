#!/usr/bin/env bash
# The local stack, no Docker: install what is missing, then start/stop/report every service on loopback.
#   bash stack/stack.sh up [service...] | down [service...] | status | install [service...] | env [service...]
# Services: redis kafka temporal bigquery twilio-mock chromium (the embedded profile: what a bare `up` starts), and
# redis-ha kafka-cluster postgres temporal-cluster (the cluster profile's, started only when named). chromium is only installed (apt): the
# browser tests launch it themselves. `env` prints what points the platform at a cluster service (KEY=value lines).
# Everything installed or written goes under .stack/ (git-ignored); settings are in .env (git-ignored).
set -euo pipefail
# shellcheck source=stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(redis kafka temporal bigquery twilio-mock chromium redis-ha kafka-cluster postgres temporal-cluster)
available=()
for s in "${ALL[@]}"; do
  f="$ROOT/stack/$s.sh"
  # shellcheck source=/dev/null
  if [ -f "$f" ]; then source "$f"; available+=("$s"); fi
done
fn() { echo "${1//-/_}_$2"; }

# Bare `up` and `install` mean the embedded profile's services; the cluster profile's are named (./dev up --cluster).
EMBEDDED=(redis kafka temporal bigquery twilio-mock chromium)
cmd="${1:-status}"; shift || true
services=("$@")
if [ ${#services[@]} -eq 0 ]; then
  case "$cmd" in up|install) services=("${EMBEDDED[@]}") ;; *) services=("${available[@]}") ;; esac
fi
for s in "${services[@]}"; do
  [[ " ${available[*]} " == *" $s "* ]] || die "unknown service '$s' (known: ${available[*]})"
done

ensure_env
case "$cmd" in
  install)
    for s in "${services[@]}"; do "$(fn "$s" install)"; done ;;
  up)
    for s in "${services[@]}"; do "$(fn "$s" install)"; done
    for s in "${services[@]}"; do
      t0=$SECONDS; "$(fn "$s" start)"; say "$s up ($((SECONDS - t0))s)"
    done
    for s in "${services[@]}"; do "$(fn "$s" status)" || true; done ;;
  down)
    for ((i=${#services[@]}-1; i>=0; i--)); do "$(fn "${services[$i]}" stop)"; done
    say "stopped: ${services[*]}" ;;
  status)
    for s in "${services[@]}"; do "$(fn "$s" status)" || true; done ;;
  env) # the variables that point the platform at these services where they differ from .env's (cluster profile)
    for s in "${services[@]}"; do
      if declare -F "$(fn "$s" env)" >/dev/null; then "$(fn "$s" env)"; fi
    done ;;
  *) die "usage: stack.sh up|down|status|install|env [service...]" ;;
esac
