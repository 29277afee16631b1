#!/usr/bin/env bash
# `make image`: Hangar's own container image, built without a registry: the Debian base this
# project builds with debootstrap (hangar/default:bookworm), the release binary and the site.
# Usage: scripts/image.sh [--tag NAME] [--binary PATH]
#   --binary: use an already built binary (the tests use the debug one) instead of building
#   the release.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

TAG=hangar/server:latest
BINARY=
while [ $# -gt 0 ]; do
  case $1 in
    --tag) TAG=$2; shift 2 ;;
    --binary) BINARY=$2; shift 2 ;;
    *) die "usage: $0 [--tag NAME] [--binary PATH]" ;;
  esac
done

scripts/docker-up.sh
scripts/images.sh default
if [ -z "$BINARY" ]; then
  scripts/setup.sh run
  say "building Hangar (release)"
  env -u RUSTFLAGS cargo xtask build --release
  BINARY=target/release/hangar
fi
[ -x "$BINARY" ] || die "no Hangar binary at $BINARY: build it first"
[ -f target/site/pkg/hangar.wasm ] || die "no site in target/site: run 'cargo xtask build' first"

CONTEXT=$(mktemp -d)
trap 'rm -rf "$CONTEXT"' EXIT
cp "$BINARY" "$CONTEXT/hangar"
cp -r target/site "$CONTEXT/site"
cat >"$CONTEXT/Dockerfile" <<'DOCKERFILE'
FROM hangar/default:bookworm
COPY hangar /usr/local/bin/hangar
COPY site /usr/share/hangar/site
ENV LEPTOS_SITE_ROOT=/usr/share/hangar/site \
    HANGAR_LISTEN=0.0.0.0:3000 \
    HANGAR_SSH_LISTEN=0.0.0.0:2222 \
    HANGAR_DATABASE_URL=sqlite:///var/lib/hangar/hangar.db
VOLUME /var/lib/hangar
EXPOSE 3000 2222
ENTRYPOINT ["/usr/local/bin/hangar"]
CMD ["serve"]
DOCKERFILE
say "building the image $TAG"
# The classic builder uses the local base image without trying to pull it.
DOCKER_BUILDKIT=0 docker build -q -t "$TAG" "$CONTEXT" >/dev/null
say "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
