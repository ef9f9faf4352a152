# The demo controller (reconciles RemediationRequests, writes audit events).
FROM debian:bookworm-slim
COPY target/release/controller /usr/local/bin/controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/controller"]
