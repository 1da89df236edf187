# Podman as this machine runs it (sourced by tools/images and tools/check-deploy; needs lib.sh).
# There is no Docker engine and no reachable image registry: podman runs as root with runc (crun
# refuses this machine's hybrid cgroups), explicit ulimits (the runtime's setrlimit is refused
# otherwise), and a Debian base image made by mmdebstrap from the machine's own apt sources.

KURT_DEBIAN_RELEASE=bookworm
# What the base tarball holds beyond mmdebstrap's minbase variant; part of its cache key.
KURT_BASE_PACKAGES=(ca-certificates)

# podman_setup: installs podman, runc and mmdebstrap, and points podman at a containers.conf of
# ours (CONTAINERS_CONF) instead of changing the machine's.
podman_setup() {
  [ "$(id -u)" = 0 ] || die "podman and mmdebstrap need root here (run as root or with sudo)"
  apt_install podman runc catatonit mmdebstrap
  local conf=$KURT_STATE_DIR/podman/containers.conf
  mkdir -p "${conf%/*}"
  cat >"$conf.new" <<'CONF'
# Written by tools/podman.sh.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
  mv "$conf.new" "$conf"
  export CONTAINERS_CONF=$conf
}

# podman_base_image: makes sure the base image is in podman's storage; sets KURT_PODMAN_BASE to its
# name. The tarball is rebuilt once a week (security updates) or when the package list changes.
podman_base_image() {
  local key week
  week=$(date -u +%G-w%V)
  key=$(printf '%s\n' "$KURT_DEBIAN_RELEASE" minbase "${KURT_BASE_PACKAGES[@]}" | sha256sum | cut -c1-12)
  local dir=$KURT_TOOLS_DIR/images
  local tar=$dir/debian-$KURT_DEBIAN_RELEASE-$week-$key.tar
  KURT_PODMAN_BASE=localhost/kurt-base:$KURT_DEBIAN_RELEASE-$week-$key
  if podman image exists "$KURT_PODMAN_BASE"; then return 0; fi
  if [ ! -s "$tar" ]; then
    log "making the Debian $KURT_DEBIAN_RELEASE base with mmdebstrap (a few minutes, once a week)"
    mkdir -p "$dir"
    rm -f "$dir/debian-$KURT_DEBIAN_RELEASE-"*"-$key.tar"
    local includes
    includes=$(IFS=,; echo "${KURT_BASE_PACKAGES[*]}")
    mmdebstrap --quiet --variant=minbase --include="$includes" "$KURT_DEBIAN_RELEASE" "$tar.tmp" >&2 ||
      die "mmdebstrap failed"
    mv "$tar.tmp" "$tar"
  fi
  podman import --quiet "$tar" "$KURT_PODMAN_BASE" >/dev/null
}
