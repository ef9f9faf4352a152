# The demo controller (reconciles RemediationRequests, writes audit events),
# built on the host like datastorage (cargo build --release -p harness-demo).
FROM debian:bookworm-slim
COPY target/release/controller /usr/local/bin/controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/controller"]
