# PostgreSQL from Debian's packages, so the demo builds with no registry
# (only debian:bookworm-slim, which scripts/base-images can make offline).
# It keeps the official image's contract: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB and PGDATA, initialised on first start (see the entrypoint).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15/main /etc/postgresql/15/main
COPY demo/postgresql-entrypoint.sh /usr/local/bin/postgresql-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgresql-entrypoint"]
