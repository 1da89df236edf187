# Podman as this machine runs it (sourced by tools/images and tools/check-deploy; needs lib.sh).
# There is no Docker engine and no reachable image registry: podman runs as root with runc (crun
# refuses this machine's hybrid cgroups), explicit ulimits (the runtime's setrlimit is refused
# otherwise), and a Debian base image made by mmdebstrap from the machine's own apt sources.

KURT_DEBIAN_RELEASE=bookworm
# What the base tarball holds beyond mmdebstrap's minbase variant; part of its cache key.
KURT_BASE_PACKAGES=(ca-certificates)
# As Debian's -slim images: no documentation, manual pages or translations (kept in the image's
# dpkg configuration, so the images' own apt-get installs leave them out too).
KURT_BASE_DPKG_OPTS=(
  'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/lintian/*'
)

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
  key=$(printf '%s\n' "$KURT_DEBIAN_RELEASE" minbase "${KURT_BASE_PACKAGES[@]}" \
    "${KURT_BASE_DPKG_OPTS[@]}" | sha256sum | cut -c1-12)
  local dir=$KURT_TOOLS_DIR/images
  local tar=$dir/debian-$KURT_DEBIAN_RELEASE-$week-$key.tar
  KURT_PODMAN_BASE=localhost/kurt-base:$KURT_DEBIAN_RELEASE-$week-$key
  if podman image exists "$KURT_PODMAN_BASE"; then return 0; fi
  if [ ! -s "$tar" ]; then
    log "making the Debian $KURT_DEBIAN_RELEASE base with mmdebstrap (a few minutes, once a week)"
    mkdir -p "$dir"
    # One base at a time: last week's, or one of another package list, goes.
    rm -f "$dir"/debian-*.tar "$dir"/.partial-*.tar
    local includes opts=() o
    includes=$(IFS=,; echo "${KURT_BASE_PACKAGES[*]}")
    for o in "${KURT_BASE_DPKG_OPTS[@]}"; do opts+=("--dpkgopt=$o"); done
    mmdebstrap --quiet --variant=minbase --include="$includes" "${opts[@]}" \
      "$KURT_DEBIAN_RELEASE" "$dir/.partial-$key.tar" >&2 ||
      die "mmdebstrap failed"
    mv "$dir/.partial-$key.tar" "$tar"
  fi
  local stale
  for stale in $(podman images --format '{{.Repository}}:{{.Tag}}' localhost/kurt-base); do
    podman rmi "$stale" >/dev/null 2>&1 || true # still in use by an image: its layers stay
  done
  podman import --quiet "$tar" "$KURT_PODMAN_BASE" >/dev/null
}
