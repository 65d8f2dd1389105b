#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the test suite.
#
#   ops/pg-test.sh start   # initdb + start on a free loopback port (idempotent, quiet)
#   ops/pg-test.sh url     # print postgres://<user>@127.0.0.1:<port>/postgres
#   ops/pg-test.sh stop    # stop it and delete its data directory
#   ops/pg-test.sh halt    # stop it, keeping its data (a restart, with resume)
#   ops/pg-test.sh resume  # start a halted server again on the same port
#
# PostgreSQL refuses to run as root, so as root the server runs as an unprivileged
# system user (`picloud-test`, created if missing); otherwise as the current user.
# The server listens on 127.0.0.1 only, keeps its unix socket in its own temp dir,
# trusts local connections and runs with fsync off: it holds nothing worth keeping.
# One server per checkout: the state file's name is derived from the repository path,
# so concurrent checkouts do not stop each other's server. A test that needs a server
# of its own (to restart it) names another state file with PICLOUD_PG_STATE.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_KEY="$(printf '%s' "$REPO_ROOT" | cksum | cut -d' ' -f1)"
# /tmp rather than $TMPDIR: the unprivileged server user must reach its directory.
PG_BASE="${PICLOUD_PG_BASE:-/tmp}"
STATE_FILE="${PICLOUD_PG_STATE:-$PG_BASE/picloud-pg-test-$REPO_KEY.state}"
RUN_USER_ROOT="picloud-test"

die() {
    echo "pg-test: $*" >&2
    exit 1
}

find_bindir() {
    local candidate
    for candidate in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
        if [[ -n "$candidate" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    # Any other installed major version will do for tests.
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_server() {
    [[ "$(id -u)" -eq 0 ]] || die "PostgreSQL server binaries not found (install postgresql-15)"
    command -v apt-get >/dev/null || die "PostgreSQL server binaries not found and apt-get is unavailable"
    echo "pg-test: installing PostgreSQL (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql-15 >/dev/null 2>&1 \
        || apt-get install -y -qq postgresql >/dev/null \
        || die "apt-get install postgresql failed"
}

free_port() {
    if command -v python3 >/dev/null && python3 -c 'import socket' 2>/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return 0
    fi
    local port
    for port in $(seq 55432 55932); do
        # A refused connection means nobody listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# Run a command as the server's owner.
# From `/`: the server's owner may not be allowed into the caller's directory.
as_owner() {
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u "$RUN_USER_ROOT" -- "$@")
    else
        (cd / && "$@")
    fi
}

load_state() {
    [[ -f "$STATE_FILE" ]] || return 1
    # shellcheck disable=SC1090
    source "$STATE_FILE"
}

is_running() {
    load_state || return 1
    [[ -d "$PG_DIR/data" ]] || return 1
    as_owner "$BINDIR/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1
}

cmd_start() {
    if is_running; then
        return 0
    fi
    # A stale state file (server gone, e.g. after a reboot): clean up and start afresh.
    if load_state; then
        rm -rf "${PG_DIR:?}"
        rm -f "$STATE_FILE"
    fi

    local bindir
    bindir="$(find_bindir)" || { install_server && bindir="$(find_bindir)"; } \
        || die "PostgreSQL server binaries not found after install"

    local owner
    if [[ "$(id -u)" -eq 0 ]]; then
        if ! id "$RUN_USER_ROOT" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER_ROOT" \
                || die "cannot create user $RUN_USER_ROOT"
        fi
        owner="$RUN_USER_ROOT"
    else
        owner="$(id -un)"
    fi

    local port dir
    port="$(free_port)" || die "no free port"
    dir="$PG_BASE/picloud-pg-$port"
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown "$owner" "$dir"
    fi

    as_owner "$bindir/initdb" -D "$dir/data" -U "$owner" --auth=trust -E UTF8 \
        --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

    start_server "$bindir" "$dir" "$port"

    cat >"$STATE_FILE" <<EOF
PG_DIR=$dir
PG_PORT=$port
PG_USER=$owner
BINDIR=$bindir
EOF
}

start_server() {
    local bindir="$1" dir="$2" port="$3"
    local opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    opts+=" -c max_connections=300"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 \
        start >/dev/null 2>&1 \
        || { cat "$dir/server.log" >&2 2>/dev/null; die "pg_ctl start failed"; }
}

cmd_halt() {
    is_running || die "not running"
    as_owner "$BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
        || die "pg_ctl stop failed"
}

cmd_resume() {
    load_state || die "never started (ops/pg-test.sh start)"
    if is_running; then
        return 0
    fi
    start_server "$BINDIR" "$PG_DIR" "$PG_PORT"
}

cmd_stop() {
    load_state || return 0
    if [[ -d "$PG_DIR/data" ]]; then
        as_owner "$BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || as_owner "$BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 \
            || true
    fi
    rm -rf "${PG_DIR:?}"
    rm -f "$STATE_FILE"
}

cmd_url() {
    is_running || die "not running (ops/pg-test.sh start)"
    echo "postgres://$PG_USER@127.0.0.1:$PG_PORT/postgres"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    url) cmd_url ;;
    halt) cmd_halt ;;
    resume) cmd_resume ;;
    *)
        echo "usage: $0 start|stop|url|halt|resume" >&2
        exit 2
        ;;
esac
