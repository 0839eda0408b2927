# shellcheck shell=bash
# Headless Chromium for the browser tests (test/browser): Debian's `chromium` package from apt, driven by
# playwright-core over CDP. Nothing is downloaded by Playwright; there is no service to start or stop.
# Sourced after stack/lib.sh; functions only.
#
# Settings (optional): CHROMIUM_PATH  the browser executable (default /usr/bin/chromium)

_chromium_path() { echo "${CHROMIUM_PATH:-/usr/bin/chromium}"; }

chromium_install() {
  [ -x "$(_chromium_path)" ] && return 0
  # Debian names the package chromium; Ubuntu's chromium-browser is a snap wrapper that does not run headless in CI.
  apt_install chromium
  [ -x "$(_chromium_path)" ] || die "chromium was installed but $(_chromium_path) is missing; set CHROMIUM_PATH"
}

chromium_start() { :; }
chromium_stop() { :; }

chromium_status() {
  local bin; bin="$(_chromium_path)"
  if [ -x "$bin" ]; then
    echo "chromium: installed $bin ($("$bin" --version 2>/dev/null | head -1)), started by the tests themselves"
    return 0
  fi
  echo "chromium: not installed (bash stack/stack.sh install chromium)"
  return 1
}
