#!/usr/bin/env bash
# System packages the remote tests need: an OpenSSH server binary (Debian's
# openssh-server) for the ssh:// DVC remote. The tests start and stop their own sshd on
# 127.0.0.1 with a throwaway key; this script only installs the binary and never starts
# or enables a system service. Idempotent and quiet; safe with no stdin (CI runs as root).
set -euo pipefail

have_sshd() {
    command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]
}

if have_sshd; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "services.sh: sshd is missing and cannot be installed here (needs root + apt-get);" \
         "the ssh remote tests will be skipped" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 tells the package scripts not to start sshd as a system service.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

install() {
    # Wait for a dpkg lock held by another apt run instead of failing at once.
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 \
        openssh-server </dev/null >/dev/null 2>&1
}
# Only refresh the package lists when the package is unknown or the install fails on them.
if ! apt-cache show openssh-server >/dev/null 2>&1 || ! install; then
    apt-get update -qq -o DPkg::Lock::Timeout=120 </dev/null >/dev/null 2>&1 || true
    if ! install; then
        # The rest of the suite still runs; the ssh remote tests skip and say why.
        echo "services.sh: warning: apt-get install openssh-server failed; ssh tests will skip" >&2
        exit 0
    fi
fi
have_sshd || echo "services.sh: warning: sshd still missing after install; ssh tests will skip" >&2
