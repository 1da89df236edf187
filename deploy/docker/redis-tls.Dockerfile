# syntax=docker/dockerfile:1
# The Redis TLS sidecar of the Redis-using pods (deploy/overlays/prod): stunnel from Debian's
# package. The services' Redis client (Debian 12's hiredis 0.14) has no TLS, and ElastiCache takes
# AUTH only over TLS; stunnel accepts plaintext on the pod's loopback (the service's --redis_url)
# and opens a TLS connection to Redis for each, verifying the server's certificate chain and name.
# stunnel rather than another proxy: it does exactly this, is small, in Debian (security updates
# with the rest of the base), and configured by one file. Its configuration is mounted at
# /etc/stunnel/kurt/redis-tls.conf (a ConfigMap).
#   docker build -f deploy/docker/redis-tls.Dockerfile -t kurt-redis-tls deploy/docker
# Any Debian 12 image: tools/images passes one made by mmdebstrap from Debian's packages.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates stunnel4 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 stunnel \
 && useradd --system --uid 10001 --gid stunnel --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin stunnel
USER 10001:10001
LABEL org.opencontainers.image.title="kurt-redis-tls" \
      org.opencontainers.image.source="Kurt" \
      org.opencontainers.image.description="TLS sidecar (stunnel) between Kurt's Redis client and Redis"
# In the foreground, logging to stderr, no pid file: nothing to write on a read-only root.
ENTRYPOINT ["/usr/bin/stunnel", "/etc/stunnel/kurt/redis-tls.conf"]
