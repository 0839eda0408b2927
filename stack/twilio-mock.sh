# shellcheck shell=bash
# Twilio API mock: Stoplight Prism serving Twilio's own OpenAPI description of api.twilio.com (2010-04-01),
# taken from the npm package @twilio/cli-core. Prism validates every request against the spec (required
# fields, types, formats, enums, SID patterns, Basic auth present) and answers 422 / 401 on violations,
# otherwise the spec's example response (201 for messages.create). Sourced after stack/lib.sh; functions only.
#
# Settings (optional, from the environment or .env):
#   TWILIO_MOCK_PORT       port (default 4010, prism's default; set in stack/lib.sh, PORT_DEFAULTS)
#   TWILIO_MOCK_LOG_LEVEL  prism log level: trace|debug|info|warn|error (default warn: validation failures only;
#                          info logs ~6 lines per request)
#   TWILIO_MOCK_FLAGS      extra prism flags, e.g. "--dynamic --seed 1" for generated instead of example bodies
#                          (do not add --errors: the spec's own list examples violate its schemas and become 500s)
#
# Clients: point the twilio library's requests for https://api.twilio.com at http://127.0.0.1:$TWILIO_MOCK_PORT
# with a custom httpClient (a RequestClient subclass that rewrites the origin); any AC + 32 hex account SID and
# any auth token work. Prism keeps no state and ignores Idempotency-Key headers.

_twilio_mock_dir() { echo "$STACK_DIR/tools/twilio-mock"; }
_twilio_mock_port() { echo "$TWILIO_MOCK_PORT"; }
_twilio_mock_prism() { echo "$(_twilio_mock_dir)/node_modules/@stoplight/prism-cli/dist/index.js"; }

# Node >= 24.18 (prism-cli 5.16 requires it): the project's pinned node (node_modules/.bin/node) if present,
# else the system one. Prints the real executable path.
_twilio_mock_node() {
  local n
  for n in "$ROOT/node_modules/.bin/node" "$(command -v node 2>/dev/null || true)"; do
    if [ -z "$n" ] || [ ! -x "$n" ]; then continue; fi
    if "$n" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 24 || (a === 24 && b >= 18) ? 0 : 1)' 2>/dev/null; then
      "$n" -p 'process.execPath'
      return 0
    fi
  done
  return 1
}

twilio_mock_spec_path() {
  local dir p
  dir="$(_twilio_mock_dir)"
  p="$dir/node_modules/@twilio/cli-core/src/services/twilio-api/twilio_api_v2010.json"
  if [ ! -f "$p" ] && [ -d "$dir/node_modules/@twilio/cli-core" ]; then
    p="$(find "$dir/node_modules/@twilio/cli-core" -name twilio_api_v2010.json -print -quit)"
    [ -n "$p" ] || p="$dir/node_modules/@twilio/cli-core/src/services/twilio-api/twilio_api_v2010.json"
  fi
  echo "$p"
  [ -f "$p" ]
}

twilio_mock_install() {
  local dir node pkgs=("@stoplight/prism-cli@5.16.0" "@twilio/cli-core@9.0.0" "twilio@6.2.0")
  dir="$(_twilio_mock_dir)"
  node="$(_twilio_mock_node)" || die "the Twilio mock needs Node >= 24.18 (prism-cli 5.16); run npm install in $ROOT first or install Node 24"
  if [ -f "$(_twilio_mock_prism)" ] && twilio_mock_spec_path >/dev/null \
     && [ "$("$node" -p 'require(process.argv[1]).version' "$dir/node_modules/@stoplight/prism-cli/package.json" 2>/dev/null)" = 5.16.0 ]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is needed to install the Twilio mock"
  mkdir -p "$dir"
  say "installing ${pkgs[*]} (npm, into $dir)"
  # npm runs on the first `node` in PATH and picks package versions whose engines fit it: put Node 24 first.
  PATH="$(dirname "$node"):$PATH" npm install --prefix "$dir" --save-exact --no-audit --no-fund --loglevel=error "${pkgs[@]}" >/dev/null
  twilio_mock_spec_path >/dev/null || die "twilio_api_v2010.json not found under $dir/node_modules/@twilio/cli-core"
}

twilio_mock_start() {
  local port node spec
  port="$(_twilio_mock_port)"
  if is_running twilio-mock; then say "twilio mock already running on 127.0.0.1:$port"; return 0; fi
  node="$(_twilio_mock_node)" || die "the Twilio mock needs Node >= 24.18"
  [ -f "$(_twilio_mock_prism)" ] || die "prism is not installed; run twilio_mock_install first"
  spec="$(twilio_mock_spec_path)" || die "Twilio OpenAPI spec missing ($spec); run twilio_mock_install first"
  if port_open 127.0.0.1 "$port"; then die "port $port is already taken by another process"; fi
  say "starting twilio mock (prism) on 127.0.0.1:$port"
  # shellcheck disable=SC2086  # TWILIO_MOCK_FLAGS is a list of flags
  start_bg twilio-mock "$LOG_DIR/twilio-mock.log" "$node" "$(_twilio_mock_prism)" mock \
    --host 127.0.0.1 --port "$port" --verboseLevel "${TWILIO_MOCK_LOG_LEVEL:-warn}" ${TWILIO_MOCK_FLAGS:-} "$spec"
  wait_port 127.0.0.1 "$port" 60 twilio-mock
}

twilio_mock_stop() {
  if is_running twilio-mock; then say "stopping twilio mock"; fi
  stop_pid twilio-mock
}

twilio_mock_status() {
  local port; port="$(_twilio_mock_port)"
  if is_running twilio-mock && port_open 127.0.0.1 "$port"; then
    echo "twilio-mock: running (pid $(cat "$RUN_DIR/twilio-mock.pid")) http://127.0.0.1:$port spec $(twilio_mock_spec_path)"
    return 0
  fi
  if is_running twilio-mock; then echo "twilio-mock: process up (pid $(cat "$RUN_DIR/twilio-mock.pid")) but not listening on 127.0.0.1:$port"; return 1; fi
  echo "twilio-mock: stopped"
  return 1
}
