# Stand-in for postgres:15.8-bookworm, which no registry here serves: Debian bookworm's
# PostgreSQL 15 with an entrypoint that honours POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB
# and keeps its cluster in /var/lib/postgresql/data, as the official image does.
FROM lake-standin/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
