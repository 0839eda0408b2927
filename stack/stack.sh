#!/usr/bin/env bash
# The local stack, no Docker: install what is missing, then start/stop/report every service on loopback.
#   bash stack/stack.sh up [service...] | down [service...] | status | install [service...]
# Services: redis kafka temporal (and bigquery, twilio-mock, chromium when their scripts exist).
# chromium is only installed (apt): the browser tests launch it themselves.
# Everything installed or written goes under .stack/ (git-ignored); settings are in .env (git-ignored).
set -euo pipefail
# shellcheck source=stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(redis kafka temporal bigquery twilio-mock chromium postgres temporal-cluster)
available=()
for s in "${ALL[@]}"; do
  f="$ROOT/stack/$s.sh"
  # shellcheck source=/dev/null
  if [ -f "$f" ]; then source "$f"; available+=("$s"); fi
done
fn() { echo "${1//-/_}_$2"; }

cmd="${1:-status}"; shift || true
services=("$@"); [ ${#services[@]} -gt 0 ] || services=("${available[@]}")
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
  *) die "usage: stack.sh up|down|status|install [service...]" ;;
esac
