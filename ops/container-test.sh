#!/usr/bin/env bash
# Builds the image of ops/Containerfile and checks it: the node runs as a non-root
# user, the HEALTHCHECK (/readyz) passes, the data directory is a volume, and the
# node answers through the published port.
#
# It needs a container engine that works (podman or docker). Where there is none it
# prints "skipped: …" and exits 0: a skip, never counted as a pass. The Rust tests
# (tests/ops.rs) check the files themselves everywhere.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

engine=""
for candidate in podman docker; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" info >/dev/null 2>&1; then
        engine="$candidate"
        break
    fi
done
if [[ -z "$engine" ]]; then
    echo "skipped: no container engine (podman or docker) works here; ops/Containerfile was not built"
    exit 0
fi

tag="localhost/picloud-test:$$"
container=""
cleanup() {
    if [[ -n "$container" ]]; then
        "$engine" rm -f "$container" >/dev/null 2>&1 || true
    fi
    "$engine" rmi -f "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "==> $engine build -f ops/Containerfile" >&2
"$engine" build -f ops/Containerfile -t "$tag" .

token="container-test-token-0123456789"
container="$("$engine" run -d -p 127.0.0.1::8080 -e PICLOUD_BOOTSTRAP_TOKEN="$token" "$tag")"

uid="$("$engine" exec "$container" id -u)"
if [[ "$uid" == "0" ]]; then
    echo "error: the node runs as root in the container" >&2
    exit 1
fi
volumes="$("$engine" inspect --format '{{json .Config.Volumes}}' "$tag")"
if [[ "$volumes" != *'/var/lib/picloud'* ]]; then
    echo "error: /var/lib/picloud is not a volume: $volumes" >&2
    exit 1
fi

healthy() {
    if [[ "$engine" == podman ]]; then
        podman healthcheck run "$container" >/dev/null 2>&1
    else
        [[ "$(docker inspect --format '{{.State.Health.Status}}' "$container")" == healthy ]]
    fi
}
deadline=$((SECONDS + 120))
until healthy; do
    if ((SECONDS > deadline)); then
        echo "error: the container did not turn healthy in 120 s" >&2
        "$engine" logs "$container" >&2 || true
        exit 1
    fi
    sleep 1
done

port="$("$engine" port "$container" 8080 | head -n 1 | sed 's/.*://')"
apps="$(exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /api/v1/admin/apps HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n' "$token" >&3 && head -n 1 <&3)"
if [[ "$apps" != *" 200 "* ]]; then
    echo "error: GET /api/v1/admin/apps through the published port: $apps" >&2
    exit 1
fi
echo "container image: built, healthy, runs as uid $uid, serves on port $port"
