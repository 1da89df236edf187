# syntax=docker/dockerfile:1
# PgBouncer from Debian's package, for deploy/base/pgbouncer.yaml. Its configuration is mounted at
# /etc/pgbouncer/conf/pgbouncer.ini (a ConfigMap) and /etc/pgbouncer/auth/userlist.txt (a Secret).
#   docker build -f deploy/docker/pgbouncer.Dockerfile -t kurt-pgbouncer deploy/docker
# Any Debian 12 image: tools/images passes one made by mmdebstrap from Debian's packages.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates pgbouncer \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pgbouncer \
 && useradd --system --uid 10001 --gid pgbouncer --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin pgbouncer
USER 10001:10001
LABEL org.opencontainers.image.title="kurt-pgbouncer" \
      org.opencontainers.image.source="Kurt" \
      org.opencontainers.image.description="PgBouncer for Kurt"
EXPOSE 6432
# PgBouncer 1.18 stops at once on SIGTERM but finishes running transactions on SIGINT; the
# container runtime sends this signal when Kubernetes stops the pod.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/sbin/pgbouncer", "/etc/pgbouncer/conf/pgbouncer.ini"]
