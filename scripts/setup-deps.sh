#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Install what building and testing vfio-dext needs, on Debian 12 (as root).
# Fast when everything is already there: it only asks dpkg, and runs apt-get
# (update once, then install) for the packages that are missing.
#
# Exit: 0 everything installed, 1 something missing and cannot be installed
# from here (not root, or not a Debian system).

set -euo pipefail

PACKAGES=(build-essential meson ninja-build pkg-config libcmocka-dev libjson-c-dev)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Without dpkg (not Debian): check the tools and libraries directly.
check_without_dpkg() {
    local missing=()
    for tool in cc meson ninja pkg-config; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    for lib in json-c cmocka; do
        pkg-config --exists "$lib" 2>/dev/null || missing+=("$lib (pkg-config)")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "setup-deps: not a Debian system and missing: ${missing[*]}" >&2
        echo "setup-deps: install them with your package manager, then rerun" >&2
        exit 1
    fi
    echo "setup-deps: build dependencies found"
    exit 0
}

command -v dpkg-query >/dev/null 2>&1 || check_without_dpkg

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "setup-deps: build dependencies installed (${PACKAGES[*]})"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-deps: missing packages: ${missing[*]}" >&2
    echo "setup-deps: run as root: sudo make deps (or: sudo $0)" >&2
    exit 1
fi

echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
