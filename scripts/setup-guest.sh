#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# setup-guest.sh [DIR] - a Linux guest for end-to-end tests under QEMU (TCG).
#
# Produces, in DIR (default /var/cache/vfio-dext/guest):
#   vmlinux    Debian bookworm's kernel (linux-image-amd64), uncompressed ELF,
#              booted through its PVH entry with -kernel (no decompression
#              under emulation)
#   initrd.gz  busybox-static initramfs with nvme + its dependency modules and
#              an /init that loads them, runs the command given on the kernel
#              command line (e2e_cmd64=BASE64, or the words after "--"),
#              prints "E2E-GUEST: result rc=N" and
#              reports N through isa-debug-exit (QEMU exits 2*N+1), then powers
#              off.  Without a command it runs a shell on the console.
#   kver       the kernel release
#   modules/   the .ko files and their load order
#
# QEMU arguments that go with it:
#   -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel DIR/vmlinux
#   -initrd DIR/initrd.gz
#   -append "console=ttyS0 quiet panic=-1 e2e_cmd64=$(printf %s "$CMD" | base64 -w0)"
# /init runs the decoded CMD with sh -c, so it may use ';', '&&', quotes and
# pipes.  "-- CMD" also works for short commands, but the kernel panics when
# it passes init more than 32 words ("Too many boot init vars").  The kernel
# command line is limited to 2048 bytes.
#
# Cached: the kernel and modules are fetched once (FORCE=1 to refetch); the
# initramfs is rebuilt only when /init or the modules change.  Needs root for
# apt-get (busybox-static, cpio, the kernel deb).  The archive comes from the
# host's apt configuration.
#
# Prints DIR on stdout (progress goes to stderr).  Exit: 0 ok, 1 failure.

set -euo pipefail

DIR=${1:-/var/cache/vfio-dext/guest}
MODULES=(crct10dif_generic crc64_rocksoft_generic nvme)   # crypto back-ends are soft deps of t10-pi

log() { echo "setup-guest: $*" >&2; }
die() { log "$*"; exit 1; }

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

need=()
for pkg in busybox-static cpio xz-utils; do
    installed "$pkg" || need+=("$pkg")
done
if ((${#need[@]})); then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
        { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; } ||
        die "cannot install ${need[*]}"
fi

mkdir -p "$DIR"

# --- kernel + modules (cached) -------------------------------------------------
if [[ ${FORCE:-0} == 1 || ! -s $DIR/vmlinux || ! -s $DIR/kver || ! -s $DIR/modules/load-order ]]; then
    kimg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: //p' | head -1; }
    KIMG=$(kimg)
    if [[ -z $KIMG ]]; then
        apt-get update -qq >&2
        KIMG=$(kimg)
    fi
    [[ $KIMG == linux-image-* ]] || die "cannot resolve linux-image-amd64"
    KVER=${KIMG#linux-image-}
    log "fetching $KIMG"

    W=$(mktemp -d "$DIR/.work.XXXXXX")
    trap 'rm -rf "$W"' EXIT
    if ! (cd "$W" && apt-get download -qq "$KIMG" 2>/dev/null); then
        apt-get update -qq >&2
        (cd "$W" && apt-get download -qq "$KIMG" 2>/dev/null) || die "cannot download $KIMG"
    fi
    dpkg -x "$W/$KIMG"_*.deb "$W/root"
    KROOT=$W/root
    MODDIR=$(find "$KROOT" -maxdepth 3 -type d -path "*/modules/$KVER" | head -1)
    [[ -n $MODDIR ]] || die "no modules for $KVER in the deb"

    # bzImage -> the xz payload -> the ELF vmlinux (PVH entry point)
    vmlinuz=$KROOT/boot/vmlinuz-$KVER
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
    [[ -n $off ]] || die "no xz payload in $vmlinuz"
    # xz complains about the trailing bzImage data after the stream; the ELF check decides
    tail -c +$((off + 1)) "$vmlinuz" | xz -dc > "$W/vmlinux" 2>/dev/null || true
    [[ $(head -c4 "$W/vmlinux" | od -An -c | tr -d ' ') == '177ELF' ]] || die "vmlinux extraction failed"

    # modules in load order, dependencies from each .ko's modinfo (no kmod needed)
    mkdir -p "$W/modules"
    declare -A seen=()
    order=()
    add_mod() {
        local m=$1 f d x
        [[ -n ${seen[$m]:-} ]] && return 0
        seen[$m]=1
        f=$(find "$MODDIR/kernel" \( -name "$m.ko" -o -name "${m//-/_}.ko" -o -name "${m//_/-}.ko" \) | head -1)
        [[ -n $f ]] || die "module $m not found"
        d=$(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | tr ',' ' ')
        for x in $d; do add_mod "$x"; done
        cp "$f" "$W/modules/"
        order+=("$(basename "$f")")
    }
    for m in "${MODULES[@]}"; do add_mod "$m"; done
    printf '%s\n' "${order[@]}" > "$W/modules/load-order"

    rm -rf "$DIR/modules"
    mv "$W/modules" "$DIR/modules"
    mv "$W/vmlinux" "$DIR/vmlinux"
    echo "$KVER" > "$DIR/kver"
    rm -rf "$W"
    trap - EXIT
fi

# --- initramfs (rebuilt when /init or the modules change) ----------------------
read -r -d '' INIT <<'EOF' || true
#!/bin/sh
# /init generated by setup-guest.sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp
echo "E2E-GUEST: init on $(uname -r)"
while read -r m; do
    insmod "/lib/modules/$m" || echo "E2E-GUEST: insmod $m FAILED"
done < /lib/modules/load-order
cmd=
for a in $(cat /proc/cmdline); do
    case $a in e2e_cmd64=*) cmd=$(echo "${a#e2e_cmd64=}" | base64 -d) ;; esac
done
[ -n "$cmd" ] || cmd=$(sed -n 's/^.* -- //p' /proc/cmdline)
if [ -z "$cmd" ]; then
    echo "E2E-GUEST: no command after '--'; shell (exit to power off)"
    setsid cttyhack sh
    rc=$?
else
    echo "E2E-GUEST: run: $cmd"
    sh -c "$cmd"
    rc=$?
fi
echo "E2E-GUEST: result rc=$rc"
[ "$rc" -gt 127 ] && rc=127
printf "\\$(printf %o "$rc")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
EOF

stamp=$( { printf '%s\n' "$INIT"; cat "$DIR/kver"; cksum "$DIR"/modules/*; } | cksum | cut -d' ' -f1)
if [[ ${FORCE:-0} == 1 || ! -s $DIR/initrd.gz || $(cat "$DIR/initrd.stamp" 2>/dev/null) != "$stamp" ]]; then
    log "building initrd.gz"
    R=$(mktemp -d "$DIR/.initrd.XXXXXX")
    trap 'rm -rf "$R"' EXIT
    mkdir -p "$R"/{bin,dev,proc,sys,tmp,lib/modules}
    cp /bin/busybox "$R/bin/busybox"
    ln -s busybox "$R/bin/sh"
    cp "$DIR"/modules/* "$R/lib/modules/"
    printf '%s\n' "$INIT" > "$R/init"
    chmod +x "$R/init"
    (cd "$R" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$DIR/initrd.gz.tmp"
    mv "$DIR/initrd.gz.tmp" "$DIR/initrd.gz"
    echo "$stamp" > "$DIR/initrd.stamp"
    rm -rf "$R"
    trap - EXIT
fi

log "kernel $(cat "$DIR/kver"), $(wc -l < "$DIR/modules/load-order") modules"
echo "$DIR"
