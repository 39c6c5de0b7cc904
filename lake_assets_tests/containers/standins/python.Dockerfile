# Stand-in for python:3.11.7-slim-bookworm, which no registry here serves: Debian bookworm's
# Python 3.11 as a virtualenv in /usr/local, so `python` and `pip` are where the official image
# has them. Only this stand-in carries this machine's CA bundle (pip reaches the package index
# through a TLS proxy); deploy/Dockerfile stays what a user builds.
FROM lake-standin/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt LANG=C.UTF-8
CMD ["python3"]
