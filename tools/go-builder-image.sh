#!/usr/bin/env bash
# Makes a local build-stage image for the Containerfile from this host's Go
# toolchain, for machines that cannot pull docker.io/library/golang:
#
#   tools/go-builder-image.sh [IMAGE]       # default localhost/nkms-go-builder
#   podman build --build-arg GO_IMAGE=localhost/nkms-go-builder ...
#
# The image holds only $(go env GOROOT) (it must be a statically linked
# toolchain, as Go's release tarballs are), the host's CA certificates (for
# the module proxy) and /tmp: no shell, so the Containerfile's build steps
# are exec-form. It is remade only when the toolchain changes.
set -euo pipefail
image=${1:-localhost/nkms-go-builder}
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
if [ "$(podman image inspect --format '{{index .Labels "nkms.go-version"}}' "$image" 2>/dev/null)" = "$gover" ]; then
  echo "$image: $gover (up to date)"
  exit 0
fi
if file -L "$goroot/bin/go" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "$goroot/bin/go is dynamically linked; the builder image has no libc" >&2
  exit 1
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/tmp" "$stage/etc/ssl/certs"
chmod 1777 "$stage/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$stage/etc/ssl/certs/"
# The toolchain goes to /usr/local/go, where the golang images keep it.
tar -C "$stage" -c tmp etc \
  --transform "s|^${goroot#/}|usr/local/go|" -C / "${goroot#/}" |
  podman import --quiet \
    --change "ENV PATH=/usr/local/go/bin" \
    --change "ENV GOTOOLCHAIN=local" \
    --change "LABEL nkms.go-version=$gover" \
    - "$image" >/dev/null
echo "$image: $gover"
