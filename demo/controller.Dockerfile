# The demo controller (reconciles RemediationRequests, writes audit events),
# built on the host like datastorage (cargo build --release -p harness-demo).
# Debian's openssl is for the webhook-certs Job (deploy/webhook-certs).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/*
COPY target/release/controller /usr/local/bin/controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/controller"]
