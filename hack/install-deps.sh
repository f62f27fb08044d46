#!/bin/sh
# install-deps.sh installs what moor's node agent, `moor up` and the
# integration tests need on a fresh Debian 12 machine. Run as root.
#
# Idempotent and fast when warm: each package is checked with dpkg-query
# first, and apt-get runs (update, then install) only when something is
# missing. It does not start, stop or enable any system service: on hosts
# with systemd Debian auto-starts containerd and docker-registry, which is
# harmless because moor uses its own sockets and ports.
set -eu

PACKAGES="containerd runc iptables nftables iproute2 git docker-registry busybox-static ca-certificates"

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root (for example: sudo $0)" >&2
	exit 1
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps.sh: needs a Debian-based system (dpkg-query and apt-get not found)" >&2
	exit 1
fi

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "installed" ]; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps.sh: all packages present"
	exit 0
fi

echo "install-deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing
echo "install-deps.sh: done"
