# Container image of the service: a build stage (Rust, release profile) and a runtime stage
# (Debian bookworm slim, non-root). The default plugins are committed under host/assets/plugins
# and embedded at build time, so the build needs neither the wasm target nor clang.
#
#   docker build -t aerospike-backup-service:3.5.0 .
#
# CI builds the same runtime stage with podman from a local bookworm base and the binary it has
# already built (scripts/packaging-check): --build-arg RUNTIME_BASE=<local image> and
# --build-arg BINARY_FROM=prebuilt, with the binary at prebuilt/aerospike-backup-service in the
# build context. Docker (BuildKit) and buildah skip the stages the runtime does not name.
ARG RUNTIME_BASE=debian:bookworm-slim
ARG BINARY_FROM=build

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aerospike-backup-service \
 && mkdir -p /out \
 && cp target/release/aerospike-backup-service /out/

# A binary built outside the image (CI's). The glob lets the COPY succeed for a context that
# has no prebuilt/ (every user's): only this stage would fail, and nothing uses it then.
FROM scratch AS prebuilt
COPY Dockerfile prebuilt* /out/

# Named by BINARY_FROM: a FROM can take a build argument where a COPY --from cannot.
FROM ${BINARY_FROM} AS binary

FROM ${RUNTIME_BASE} AS runtime
ARG RUNTIME_BASE
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="aerospike-backup-service" \
      org.opencontainers.image.description="Scheduled backups and restores of Aerospike clusters (ABS v3 API), with WASM plugins" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/aerospike-community/aerospike-backup-service-rs" \
      org.opencontainers.image.base.name="${RUNTIME_BASE}"
# The uid/gid is fixed so volumes and Kubernetes' runAsUser/fsGroup can name it. No packages
# are added: TLS roots are built into the binary (SSL_CERT_FILE adds more) and the health
# check speaks HTTP through bash.
RUN groupadd --gid 10001 abs \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/aerospike-backup-service \
      --no-create-home --shell /usr/sbin/nologin abs \
 && mkdir -p /etc/aerospike-backup-service /var/lib/aerospike-backup-service \
 && chown abs:abs /etc/aerospike-backup-service /var/lib/aerospike-backup-service
COPY --from=binary /out/aerospike-backup-service /usr/bin/aerospike-backup-service
COPY --chown=abs:abs config/aerospike-backup-service.yml /etc/aerospike-backup-service/aerospike-backup-service.yml
# Everything the service writes lives under its home: backups of the default config
# (./backups), the plugin compile cache (~/.cache). One volume there makes --read-only work.
ENV HOME=/var/lib/aerospike-backup-service
USER 10001:10001
WORKDIR /var/lib/aerospike-backup-service
VOLUME ["/var/lib/aerospike-backup-service"]
EXPOSE 8080
# The service finishes running backups within --shutdown-grace (30 s) after SIGTERM: give
# `docker stop -t` more than that.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/bin/aerospike-backup-service"]
CMD ["-c", "/etc/aerospike-backup-service/aerospike-backup-service.yml"]
