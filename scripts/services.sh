#!/usr/bin/env bash
# System packages the tests need, from Debian:
#   openssh-server  the ssh:// DVC remote (tests start their own sshd on 127.0.0.1)
#   git-lfs         coexistence tests (its hook installer beside ours)
#   chromium        the dashboard page, rendered headless
#   zstd            scripts/bench_dedup.py compares deduplicated storage with `zstd -3`
#   zsh             the zsh completion script, run in a real zsh
# This script only installs binaries and never starts or enables a system service.
# Idempotent and quiet; safe with no stdin (CI runs as root). Tests that need a missing
# binary skip and say why, so a machine without root still runs the rest.
set -euo pipefail

missing=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v git-lfs >/dev/null 2>&1 || missing+=(git-lfs)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "services.sh: missing ${missing[*]} and cannot install here (needs root + apt-get);" \
         "the tests that need them will skip" >&2
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
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
        "${missing[@]}" </dev/null >/dev/null 2>&1
}
# Only refresh the package lists when a package is unknown or the install fails on them.
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1 || ! install; then
    apt-get update -qq -o DPkg::Lock::Timeout=300 </dev/null >/dev/null 2>&1 || true
    if ! install; then
        echo "services.sh: warning: apt-get install ${missing[*]} failed; their tests will skip" >&2
        exit 0
    fi
fi
