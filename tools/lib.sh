# Shared by the scripts in tools/: where things live, the default ports, installing packages.
# Sourced, never run.

KURT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KURT_STATE_DIR=${KURT_STATE_DIR:-$KURT_ROOT/.kurt}
export KURT_BUILD_DIR=${KURT_BUILD_DIR:-$KURT_ROOT/build}

export KURT_PG_PORT=${KURT_PG_PORT:-15432}
export KURT_PG_REPLICA_PORT=${KURT_PG_REPLICA_PORT:-15433}
export KURT_REDIS_PORT=${KURT_REDIS_PORT:-16379}
export KURT_KAFKA_PORT=${KURT_KAFKA_PORT:-19092}
export KURT_KAFKA_CONTROLLER_PORT=${KURT_KAFKA_CONTROLLER_PORT:-19093}
export KURT_KAFKA_SASL_PORT=${KURT_KAFKA_SASL_PORT:-19094}
export KURT_EDGE_PORT=${KURT_EDGE_PORT:-8080}
# The console (nginx standing in for the CDN; tools/console.sh).
export KURT_CONSOLE_PORT=${KURT_CONSOLE_PORT:-8090}

# Let ccache share results between checkouts in different directories (CI builds a fresh clone).
export CCACHE_BASEDIR=$KURT_ROOT CCACHE_NOHASHDIR=true

# Debian packages the build and the local stack need.
KURT_BUILD_PACKAGES=(
  cmake ninja-build ccache pkg-config g++ git python3 python3-pip unzip
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  librdkafka-dev libpqxx-dev libpq-dev libhiredis-dev libjemalloc-dev libboost-dev libgtest-dev
  libgmock-dev libbenchmark-dev libcurl4-openssl-dev libssl-dev libsodium-dev libqrencode-dev
  libpng-dev
  # The edge's unary upstream calls: an HTTP/2 client on its I/O threads (edge/h2_upstream.h),
  # mutual TLS with OpenSSL (libssl-dev, above).
  libnghttp2-dev
  # Click analytics tells bots, and links' redirect rules devices, by uap-core's regexes (RE2,
  # yaml-cpp); links places client addresses in countries by tor-geoipdb's tables.
  libre2-dev libyaml-cpp-dev uap-core tor-geoipdb
  # The tests read QR codes back: zbarimg decodes them, rsvg-convert rasterises the SVG ones.
  zbar-tools librsvg2-bin
)
KURT_STACK_PACKAGES=(postgresql redis-server kcat openjdk-17-jre-headless maven curl procps)

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

pid_alive() { # PID: the process exists and is not a zombie
  local stat
  [ -n "${1:-}" ] && stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # after the command name, which may hold spaces
  [ "${stat%% *}" != Z ]
}

# cmdline_has PID STRING: the process's command line holds STRING. Not for a process that may be
# starting: while it execs its command line reads empty (or as its parent's).
cmdline_has() {
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$2"* ]]
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG...: installs the packages that are not installed yet (apt-get update once).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# Tools built or installed for the scripts (Go binaries, Python venvs) are kept outside the
# checkout, so fresh clones on one machine (CI) reuse them; each is keyed by its version.
export KURT_TOOLS_DIR=${KURT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kurt-tools}

# ensure_go MINOR WHAT: a Go of at least 1.MINOR on PATH (the machine's /usr/local/go, else
# Debian's), or dies saying that WHAT needs it.
ensure_go() {
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || apt_install golang-go
  local minor
  minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
  [ "$minor" -ge "$1" ] || die "$2 needs Go 1.$1 or newer; $(go env GOVERSION) found"
}

# go_tool NAME MODULE@VERSION [go install flags...]: prints the path of a Go-built tool, building
# it from the Go module proxy the first time.
go_tool() {
  local name=$1 module=$2; shift 2
  local dir=$KURT_TOOLS_DIR/go/$name@${module##*@}
  if [ ! -x "$dir/$name" ]; then
    command -v go >/dev/null || apt_install golang-go
    log "building $name from the Go module proxy ($module)"
    mkdir -p "$dir.tmp"
    GOBIN=$dir.tmp go install "$@" "$module" >&2
    local built
    built=$(find "$dir.tmp" -maxdepth 1 -type f -perm -u+x | head -n 1)
    [ -n "$built" ] || die "go install $module produced no binary"
    mv "$built" "$dir.tmp/$name.new" && mkdir -p "$dir" && mv "$dir.tmp/$name.new" "$dir/$name"
    rm -rf "$dir.tmp"
  fi
  printf '%s\n' "$dir/$name"
}

# The grpcurl the scripts use (tools/grpcurl runs it): go_tool grpcurl "$KURT_GRPCURL_MODULE".
KURT_GRPCURL_MODULE=github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
