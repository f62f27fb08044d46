#!/usr/bin/env bash
# Runs every test of moor on this machine, as CI does: installs what the
# tests need (Debian packages), then unit, integration and end-to-end tests
# against real containerd, runc, git and a loopback registry. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/install-deps.sh

export PATH=/usr/local/go/bin:$PATH
echo "== build the Vault test server (tools/vaultdev, its own module)"
# A real Vault, in-process, for the secrets and end-to-end tests. The first
# build on a fresh machine downloads ~2.8 GB of modules and compiles for
# several minutes; the Go caches make later runs take seconds.
go build -C tools/vaultdev -o "$PWD/bin/vaultdev" .
export MOOR_VAULTDEV="$PWD/bin/vaultdev"
go vet -C tools/vaultdev ./...
echo "== go vet"
go vet ./...
echo "== go test"
# -p 1 keeps integration tests that start containerd daemons from
# competing for the machine's two cores.
go test -race -count=1 -timeout 25m -p 1 ./...
