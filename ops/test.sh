#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   formatting, clippy (warnings are errors), and every test of the workspace,
#   with the store conformance suite run against SQLite and a throwaway PostgreSQL,
#   and the cluster tests with a real Caddy (installed with apt-get when missing).
#
# PostgreSQL comes from ops/pg-test.sh (started here, stopped on exit) unless
# PICLOUD_TEST_DATABASE_URL is already set. If it cannot start, CI=true makes
# that fatal; elsewhere the PostgreSQL tests are skipped with a warning.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
    echo "==> $*" >&2
}

pg_started=false
cleanup() {
    if [[ "$pg_started" == true ]]; then
        ops/pg-test.sh stop || echo "warning: could not stop the test PostgreSQL" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

if [[ -n "${PICLOUD_TEST_DATABASE_URL:-}" ]]; then
    step "PostgreSQL: using PICLOUD_TEST_DATABASE_URL from the environment"
else
    step "PostgreSQL: starting a throwaway server (ops/pg-test.sh)"
    if ops/pg-test.sh start; then
        pg_started=true
        PICLOUD_TEST_DATABASE_URL="$(ops/pg-test.sh url)"
        export PICLOUD_TEST_DATABASE_URL
    elif [[ "${CI:-}" == "true" ]]; then
        echo "error: could not start PostgreSQL, and CI=true requires the PostgreSQL suite" >&2
        exit 1
    else
        echo "warning: could not start PostgreSQL; its tests will be skipped" >&2
    fi
fi

# Caddy, for the tests that put it in front of real nodes (tests/cluster.rs):
# Debian's package, installed when missing. CI=true makes a missing Caddy fail
# those tests; elsewhere they are skipped with a notice.
if ! command -v caddy >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        step "installing caddy (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq caddy; } >/dev/null 2>&1 \
            || echo "warning: apt-get install caddy failed" >&2
    fi
    if ! command -v caddy >/dev/null 2>&1 && [[ "${CI:-}" == "true" ]]; then
        echo "error: caddy is not installed, and CI=true requires the Caddy tests" >&2
        exit 1
    fi
fi

if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace"
    cargo nextest run --workspace
    # nextest does not run doctests.
    step "cargo test --workspace --doc"
    cargo test --workspace --doc
else
    step "cargo test --workspace"
    cargo test --workspace
fi

# The benchmark harness in smoke mode (tiny counts, one pair per figure, no goal or
# timing check): proves it still runs end to end. Debug build of the workspace's
# binaries, sharing the test build's dependencies; the PostgreSQL figures use the
# server above. Benchmarks proper are `ops/bench/run` (see BENCHMARKS.md), never part
# of the test suite.
step "benchmark harness smoke run (picloud-bench --smoke, debug build)"
target_dir="${CARGO_TARGET_DIR:-target}"
if ! { cargo build --quiet --workspace --bins \
    && "$target_dir/debug/picloud-bench" --smoke --picloud "$target_dir/debug/picloud" all; }; then
    if [[ "${CI:-}" == "true" ]]; then
        echo "error: the benchmark smoke run failed" >&2
        exit 1
    fi
    echo "warning: the benchmark smoke run failed" >&2
fi

# The dashboard: the committed build (dashboard/dist, embedded in the binary) is what
# npm builds from the source, and the browser tests pass in Debian's chromium
# (installed when missing). CI=true makes a missing npm or browser fatal.
step "dashboard: stale-build check and browser tests (ops/dashboard-test.sh)"
ops/dashboard-test.sh

# The container image: built and checked where podman or docker works; elsewhere
# the script prints "skipped: …" (a skip, not a pass; tests/ops.rs checks the files).
step "container image (ops/container-test.sh)"
ops/container-test.sh

step "all checks passed"
