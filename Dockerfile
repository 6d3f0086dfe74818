# acme-sidecar container image: built from Debian 12 packages only, nothing downloaded at build time
# beyond the Debian archive.
#   docker build -t REGISTRY/acme-sidecar:TAG .
# The image runs as uid/gid 65532 with a read-only root filesystem in mind (manifests/ mounts an
# emptyDir on /tmp).

# --- build ------------------------------------------------------------------------------------
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config ca-certificates \
      prometheus-cpp-dev libcpp-httplib-dev nlohmann-json3-dev libssl-dev libcurl4-openssl-dev \
      libcli11-dev libyaml-cpp-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Release build of the daemon only; the tests (and Catch2) are not needed in the image. Without .git
# in the context (.dockerignore) the revision in --version and build_info reads "unknown".
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DACME_SIDECAR_TESTS=OFF \
 && cmake --build /build --target acme-sidecar -j"$(nproc)" \
 && strip /build/sidecar/acme-sidecar \
 && /build/sidecar/acme-sidecar --version

# --- runtime ----------------------------------------------------------------------------------
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcpp-httplib0.11 libssl3 libcurl4 \
      libyaml-cpp0.7 libmicrohttpd12 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && echo 'acme-sidecar:x:65532:65532:acme-sidecar:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'acme-sidecar:x:65532:' >> /etc/group
COPY --from=build /build/sidecar/acme-sidecar /usr/local/bin/acme-sidecar
USER 65532:65532
ENV HOME=/tmp
# 9402: /metrics, /healthz, /readyz. The challenge responder listens on 127.0.0.1:8089 only.
EXPOSE 9402
ENTRYPOINT ["/usr/local/bin/acme-sidecar"]
