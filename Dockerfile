# Multi-stage build of the service. The default plugins are committed under host/assets/plugins
# and embedded at build time, so this image needs neither the wasm target nor clang.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aerospike-backup-service

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/aerospike-backup-service --create-home abs \
 && mkdir -p /etc/aerospike-backup-service \
 && chown abs /etc/aerospike-backup-service
COPY --from=build /src/target/release/aerospike-backup-service /usr/bin/aerospike-backup-service
COPY --chown=abs config/aerospike-backup-service.yml /etc/aerospike-backup-service/aerospike-backup-service.yml
USER abs
WORKDIR /var/lib/aerospike-backup-service
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["/usr/bin/aerospike-backup-service"]
CMD ["-c", "/etc/aerospike-backup-service/aerospike-backup-service.yml"]
