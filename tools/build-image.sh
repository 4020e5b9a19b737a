#!/usr/bin/env bash
# Builds the nkms container image from the Containerfile with podman:
#
#   tools/build-image.sh [TAG]        # default localhost/nkms:dev
#
# The build stage is GO_IMAGE when set (e.g. docker.io/library/golang:1.26),
# else an image made from this host's Go toolchain (tools/go-builder-image.sh),
# for machines that cannot pull. Modules come from this host's module cache
# first (mounted read-only as a file:// proxy), then from the usual proxy.
# --layers=false: no intermediate images (the build stage alone is ~270 MB);
# the Go build cache is a cache mount, so a rebuild still compiles only what
# changed. Without CONTAINERS_CONF it uses a temporary containers.conf that works
# without systemd (cgroupfs, no default ulimits), not the user's files.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/nkms:dev}
if [ -z "${CONTAINERS_CONF:-}" ]; then
  conf=$(mktemp -d)/containers.conf
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\n' >"$conf"
  export CONTAINERS_CONF=$conf
fi
if [ -z "${GO_IMAGE:-}" ]; then
  GO_IMAGE=localhost/nkms-go-builder
  tools/go-builder-image.sh "$GO_IMAGE"
fi
args=(--format docker --layers=false --network host --build-arg "GO_IMAGE=$GO_IMAGE" -t "$tag")
downloads=$(go env GOMODCACHE)/cache/download
if [ -d "$downloads" ]; then
  args+=(-v "$downloads:/hostproxy:ro" --build-arg "GOPROXY=file:///hostproxy,$(go env GOPROXY)")
fi
podman build "${args[@]}" .
