# syntax=docker/dockerfile:1
#
# moor in a container. The one binary is the server (`moor server`), the
# node agent (`moor agent`) and the CLI.
#
#   docker build -t moor .
#   docker run --rm -v moor-data:/var/lib/moor -p 8443:8443 moor server ...
#
# Server and CLI run fine in this image as the non-root user below. The
# node agent drives the host's containerd (not shipped here: containerd,
# runc and iptables belong to the node, see hack/install-deps.sh) and
# changes the host's network, so an agent container must run as root
# (`--user 0`) with the containerd socket and /run mounted in; running the
# agent directly on the host is the supported way.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/moor ./cmd/moor

FROM debian:bookworm-slim
# ca-certificates: HTTPS Git remotes. No git binary: moor uses go-git.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/moor --create-home moor
COPY --from=build /out/moor /usr/local/bin/moor
USER moor
WORKDIR /var/lib/moor
VOLUME /var/lib/moor
ENTRYPOINT ["/usr/local/bin/moor"]
CMD ["--help"]
