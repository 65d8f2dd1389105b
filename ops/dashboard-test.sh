#!/usr/bin/env bash
# The dashboard's checks, run by ops/test.sh after the Rust suite:
#   1. rebuild dashboard/dist with npm (`npm ci`, `npm run build`) and fail if it
#      differs from the committed copy (the binary embeds the committed copy, so a
#      stale one would ship old code);
#   2. start the debug picloud on a free loopback port with a throwaway data
#      directory and run the Playwright browser tests in Debian's chromium.
#
# Debian's chromium (and Node.js/npm) are installed with apt-get when missing and we
# are root. With CI=true anything that cannot install or start fails the run;
# elsewhere the checks are skipped with a loud warning.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root_dir="$(pwd)"

step() {
    echo "==> $*" >&2
}

unavailable() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "error: $*, and CI=true requires the dashboard checks" >&2
        exit 1
    fi
    echo "WARNING: $* — the dashboard checks are SKIPPED" >&2
    exit 0
}

apt_install() {
    [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null || return 1
    step "apt-get install -y $*"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v npm >/dev/null; then
    apt_install nodejs npm || unavailable "npm is not installed and could not be installed"
fi
chromium="${PICLOUD_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
    apt_install chromium || unavailable "chromium is not installed and could not be installed"
fi
if ! "$chromium" --headless --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1; then
    unavailable "chromium ($chromium) does not start"
fi

step "dashboard: npm ci"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd dashboard && npm ci --no-audit --no-fund --loglevel=error) || unavailable "npm ci failed"

step "dashboard: npm run build, then compare with the committed dashboard/dist"
(cd dashboard && npm run --silent build >/dev/null)
if git rev-parse --git-dir >/dev/null 2>&1; then
    if ! git diff --quiet -- dashboard/dist \
        || [[ -n "$(git ls-files --others --exclude-standard -- dashboard/dist)" ]]; then
        git status --short -- dashboard/dist >&2
        echo "error: dashboard/dist is stale: run 'npm run build' in dashboard/ and commit dashboard/dist" >&2
        exit 1
    fi
fi

target_dir="${CARGO_TARGET_DIR:-target}"
binary="$target_dir/debug/picloud"
step "dashboard: cargo build --bin picloud"
cargo build --quiet --bin picloud

port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
data_dir="$(mktemp -d)"
log="$data_dir/picloud.log"
token="pc_dashboard_test_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$data_dir"
}
trap stop_server EXIT

step "dashboard: starting picloud on 127.0.0.1:$port"
PICLOUD_BOOTSTRAP_TOKEN="$token" "$binary" serve --listen "127.0.0.1:$port" \
    --data-dir "$data_dir/data" >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if node -e "fetch('http://127.0.0.1:$port/readyz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$log" >&2
        echo "error: picloud exited before it was ready" >&2
        exit 1
    fi
    sleep 0.2
done

step "dashboard: Playwright browser tests (chromium: $chromium)"
results="$data_dir/playwright.out"
status=0
(cd dashboard && PICLOUD_URL="http://127.0.0.1:$port" PICLOUD_TOKEN="$token" \
    PICLOUD_CHROMIUM="$chromium" npx playwright test) 2>&1 | tee "$results" || status=$?
passed="$(grep -Eo '^ *[0-9]+ passed' "$results" | grep -Eo '[0-9]+' | tail -1 || true)"
failed="$(grep -Eo '^ *[0-9]+ failed' "$results" | grep -Eo '[0-9]+' | tail -1 || true)"
if [[ "$status" != 0 ]]; then
    echo "picloud log (last 40 lines):" >&2
    tail -n 40 "$log" >&2
    echo "screenshots of failures: $root_dir/dashboard/test-results/" >&2
fi
echo "dashboard: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
