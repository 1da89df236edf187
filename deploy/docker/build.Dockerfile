# syntax=docker/dockerfile:1
# Every Kurt binary compiled once, from source, in a container: for a release machine without the
# project's build. The result is the build context of deploy/docker/Dockerfile (bin/<binary>,
# migrations/), exported with --output:
#   docker build -f deploy/docker/build.Dockerfile --output type=local,dest=out .
#   (podman build … --output type=local,dest=out . works the same)
# It installs the same Debian packages as tools/lib.sh's KURT_BUILD_PACKAGES and the googleapis
# protos from PyPI (as tools/bootstrap does). A cold build takes about half an hour on two cores,
# which is why tools/images stages the context from tools/build's ccache-backed build instead.

# Any Debian 12 image (tools/images' mmdebstrap base works too).
ARG BUILD_IMAGE=debian:bookworm

FROM ${BUILD_IMAGE} AS build
ARG GOOGLEAPIS_VERSION=1.76.0
# Keep in step with KURT_BUILD_PACKAGES in tools/lib.sh.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates cmake ninja-build ccache pkg-config g++ git python3 python3-pip unzip \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev \
      librdkafka-dev libpqxx-dev libpq-dev libhiredis-dev libjemalloc-dev libboost-dev \
      libgtest-dev libgmock-dev libbenchmark-dev libcurl4-openssl-dev libsodium-dev \
      libqrencode-dev libpng-dev libnghttp2-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*

# google/api and google/rpc protos from the googleapis-common-protos wheel (Debian's copy lacks
# google/api/httpbody.proto).
WORKDIR /opt/googleapis
RUN python3 -m pip download --quiet --no-deps --disable-pip-version-check -d /tmp/wheel \
      "googleapis-common-protos==${GOOGLEAPIS_VERSION}" \
 && python3 -c 'import glob, zipfile; z = zipfile.ZipFile(glob.glob("/tmp/wheel/*.whl")[0]); [z.extract(n, ".") for n in z.namelist() if n.startswith("google/") and n.endswith(".proto")]' \
 && rm -rf /tmp/wheel \
 && test -f google/api/httpbody.proto

WORKDIR /src
COPY . .
# Every binary in one build: the shared libraries are compiled once for all images.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DKURT_GOOGLEAPIS_DIR=/opt/googleapis \
 && cmake --build /build -j "$(nproc)" --target \
      kurt-edge kurt-links kurt-accounts kurt-analytics kurt-reports kurt-report-worker \
      kurt-notifications kurt-migrate \
 && mkdir -p /out/bin \
 && for b in kurt-edge kurt-links kurt-accounts kurt-analytics kurt-reports kurt-report-worker \
      kurt-notifications kurt-migrate; do strip -o "/out/bin/$b" "/build/bin/$b"; done \
 && cp -r migrations /out/migrations

FROM scratch
COPY --from=build /out/ /
