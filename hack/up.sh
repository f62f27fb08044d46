#!/usr/bin/env bash
# Starts moor all-in-one on this machine with repo-example/: installs what
# it needs (Debian packages), builds the moor binary and runs `moor up`.
# Ctrl-C stops everything it started. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/install-deps.sh

export PATH=/usr/local/go/bin:$PATH
mkdir -p bin
go build -o bin/moor ./cmd/moor
exec ./bin/moor up --example repo-example "$@"
