# The audit DataStorage service. The binary is built on the host
# (`cargo build --release -p harness-demo`) and packaged here, so the image needs no
# toolchain and builds without a registry once the base image exists
# (see scripts/ for making it offline).
FROM debian:bookworm-slim
COPY target/release/datastorage /usr/local/bin/datastorage
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/datastorage"]
