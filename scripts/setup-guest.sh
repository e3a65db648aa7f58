#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# setup-guest.sh [DIR] - a Linux guest for end-to-end tests under QEMU (TCG).
#
# Produces, in DIR (default /var/cache/vfio-dext/guest):
#   vmlinux     Debian bookworm's kernel (linux-image-amd64), uncompressed ELF,
#               booted through its PVH entry with -kernel (no decompression
#               under emulation)
#   initrd.img  the initramfs (an uncompressed newc cpio, the fastest to boot
#               under TCG; see docs/guest.md): busybox,
#               fio, nvme-cli and e2fsprogs from Debian bookworm with exactly
#               the shared libraries they load and the loader; the nvme and
#               ext4 modules with their dependencies; /bin/vdx-demo
#               (guest/vdx-demo.sh); and an /init that loads the modules,
#               runs the command given on the kernel command line
#               (e2e_cmd64=BASE64, or the words after "--"), prints
#               "E2E-GUEST: result rc=N" and reports N through isa-debug-exit
#               (QEMU exits 2*N+1), then powers off.  Without a command it
#               runs a shell on the console.
#   kver        the kernel release; config-KVER its configuration
#   modules/    the .ko files and their load order
#   apt/, root/ the guest packages' debs and their unpacked tree (the cache
#               the initramfs is built from)
#
# QEMU arguments that go with it:
#   -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel DIR/vmlinux
#   -initrd DIR/initrd.img
#   -append "console=ttyS0 quiet panic=-1 e2e_cmd64=$(printf %s "$CMD" | base64 -w0)"
# /init runs the decoded CMD with sh -c, so it may use ';', '&&', quotes and
# pipes; CMD=vdx-demo runs the demo.  "-- CMD" also works for short commands,
# but the kernel panics when it passes init more than 32 words ("Too many boot
# init vars").  The kernel command line is limited to 2048 bytes.
#
# Cached: the kernel and modules are fetched once, and again only when the
# module list below changes; the guest packages are resolved, downloaded and
# unpacked once, and again only when the package list changes (FORCE=1 redoes
# both, picking up new versions).  The initramfs is rebuilt when any of its
# inputs changes: this script, guest/vdx-demo.sh, the kernel, the modules or
# the unpacked packages.  Needs root for apt-get (cpio and xz-utils on
# the host when missing, "apt-get update" when a download fails).  The archive
# comes from the host's apt configuration; the guest's packages are resolved
# against an empty dpkg status, so nothing depends on what the host has
# installed.  INITRD_COMPRESS=gzip|lz4|zstd|xz compresses the initramfs
# (default none: each of them boots slower under TCG; see docs/guest.md).
#
# Prints DIR on stdout (progress goes to stderr).  Exit: 0 ok, 1 failure.

set -euo pipefail

DIR=${1:-/var/cache/vfio-dext/guest}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=$SRC/guest/vdx-demo.sh
COMPRESS=${INITRD_COMPRESS:-none}

# Loaded in this order, each after its dependencies (from modinfo).  Soft
# dependencies are listed by hand: the crypto back-ends of t10-pi (nvme) and
# crc32c for ext4/jbd2 checksums ("softdep=pre: crypto-crc32c"; the
# crc32c-intel variant needs SSE4.2, which TCG's default CPU lacks).
MODULES=(crct10dif_generic crc64_rocksoft_generic nvme crc32c_generic ext4)

# Debian packages of the guest; their whole Depends/Pre-Depends closure is
# downloaded and unpacked into DIR/root.
PACKAGES=(busybox-static fio nvme-cli e2fsprogs)

# What of DIR/root goes into the initramfs, at the same path.  Symlinks are
# copied as links (their targets must be listed too); every dynamically
# linked ELF file brings the libraries it resolves to and the loader.
FILES=(
    bin/busybox
    usr/bin/fio
    usr/sbin/nvme
    sbin/mke2fs sbin/mkfs.ext4 sbin/e2fsck sbin/fsck.ext4
    sbin/tune2fs sbin/e2label sbin/dumpe2fs sbin/debugfs sbin/resize2fs
    usr/sbin/filefrag usr/bin/chattr usr/bin/lsattr
    etc/mke2fs.conf
)

log() { echo "setup-guest: $*" >&2; }
die() { log "$*"; exit 1; }

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

case $COMPRESS in
none) COMPRESS_CMD=(cat) ;;
gzip) COMPRESS_CMD=(gzip -1) ;;
lz4) COMPRESS_CMD=(lz4 -l -1 -q) ;; # the kernel reads only lz4's legacy frame
zstd) COMPRESS_CMD=(zstd -1 -q -T0) ;;
xz) COMPRESS_CMD=(xz -0 --check=crc32 -T0) ;; # the kernel checks crc32 only
*) die "INITRD_COMPRESS=$COMPRESS: use none, gzip, lz4, zstd or xz" ;;
esac
[[ -f $DEMO ]] || die "missing $DEMO (run the script from the source tree)"

need=()
hostpkgs=(cpio xz-utils)
[[ $COMPRESS == lz4 ]] && hostpkgs+=(lz4)
[[ $COMPRESS == zstd ]] && hostpkgs+=(zstd)
for pkg in "${hostpkgs[@]}"; do
    installed "$pkg" || need+=("$pkg")
done
if ((${#need[@]})); then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
        { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; } ||
        die "cannot install ${need[*]} (run as root, with the Debian archive reachable)"
fi

mkdir -p "$DIR"
# one setup at a time per DIR (tests and `make run` may start together)
exec 9> "$DIR/.lock"
flock 9
W=
cleanup() { [[ -z $W ]] || rm -rf "$W"; }
trap cleanup EXIT

# --- kernel + modules (cached) -------------------------------------------------

# add_mod NAME: NAME after its dependencies into $W/modules and order[].
add_mod() {
    local m=$1 f d x
    [[ -n ${seen[$m]:-} ]] && return 0
    seen[$m]=1
    f=$(find "$MODDIR/kernel" \( -name "$m.ko" -o -name "${m//-/_}.ko" -o -name "${m//_/-}.ko" \) | head -1)
    [[ -n $f ]] || die "module $m not found in $KIMG"
    d=$(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | tr ',' ' ')
    for x in $d; do add_mod "$x"; done
    cp "$f" "$W/modules/"
    order+=("$(basename "$f")")
}

fetch_kernel() {
    local KROOT vmlinuz off m
    kimg_of() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: //p' | head -1; }
    KIMG=$(kimg_of)
    if [[ -z $KIMG ]]; then
        apt-get update -qq >&2
        KIMG=$(kimg_of)
    fi
    [[ $KIMG == linux-image-* ]] || die "cannot resolve linux-image-amd64 (apt-get update?)"
    KVER=${KIMG#linux-image-}
    log "fetching $KIMG"

    W=$(mktemp -d "$DIR/.work.XXXXXX")
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
    declare -gA seen=()
    order=()
    for m in "${MODULES[@]}"; do add_mod "$m"; done
    printf '%s\n' "${order[@]}" > "$W/modules/load-order"
    printf '%s\n' "${MODULES[@]}" > "$W/modules/requested"

    rm -rf "$DIR/modules" "$DIR"/config-*
    cp "$KROOT/boot/config-$KVER" "$DIR/config-$KVER"
    mv "$W/modules" "$DIR/modules"
    mv "$W/vmlinux" "$DIR/vmlinux"
    echo "$KVER" > "$DIR/kver"
    rm -rf "$W"
    W=
}

if [[ ${FORCE:-0} == 1 || ! -s $DIR/vmlinux || ! -s $DIR/kver || ! -s $DIR/modules/load-order ||
    $(cat "$DIR/modules/requested" 2>/dev/null) != "$(printf '%s\n' "${MODULES[@]}")" ]]; then
    fetch_kernel
fi

# --- guest packages: resolve, download, unpack (cached) -----------------------
A=$DIR/apt
ROOT=$DIR/root
PKGSTAMP=$ROOT/.vdx-packages # "packages: LIST", then the unpacked debs

# apt-get with the host's sources and lists but an empty dpkg status and a
# private download directory: resolves the full closure, installs nothing.
guest_apt() {
    APT_CONFIG=$A/apt.conf apt-get "$@"
}

apt_config() {
    mkdir -p "$A/archives/partial"
    : > "$A/status"
    cat > "$A/apt.conf" <<EOF
Dir::State::status "$A/status";
Dir::State::extended_states "$A/extended_states";
Dir::Cache "$A";
Dir::Cache::archives "$A/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Get::Download-Only "true";
Debug::NoLocking "true";
EOF
}

# The deb file names of the closure, as apt names them (epoch ':' -> %3a).
resolve_debs() {
    guest_apt install -s -qq "${PACKAGES[@]}" 2>/dev/null |
        awk '$1 == "Inst" && match($0, /\[[a-z0-9]+\]/) {
                 v = $3; sub(/^\(/, "", v); sub(/:/, "%3a", v)
                 print $2 "_" v "_" substr($0, RSTART + 1, RLENGTH - 2) ".deb" }'
}

fetch_packages() {
    local debs d n=0 f
    apt_config
    log "resolving ${PACKAGES[*]} (Debian $(cut -d. -f1 /etc/debian_version 2>/dev/null || echo '?'))"
    debs=$(resolve_debs)
    if [[ -z $debs ]] || ! guest_apt install -y -qq "${PACKAGES[@]}" >&2 2>/dev/null; then
        log "download failed; apt-get update and retry"
        apt-get update -qq >&2 || die "apt-get update failed (run as root, with the Debian archive reachable)"
        debs=$(resolve_debs)
        [[ -n $debs ]] || die "cannot resolve ${PACKAGES[*]} from the host's apt sources"
        guest_apt install -y -qq "${PACKAGES[@]}" >&2 || die "cannot download ${PACKAGES[*]}"
    fi
    # keep exactly the resolved set: superseded versions are never unpacked
    for f in "$A"/archives/*.deb; do
        grep -qxF "$(basename "$f")" <<<"$debs" || rm -f "$f"
    done

    W=$(mktemp -d "$DIR/.root.XXXXXX")
    for d in $debs; do
        [[ -f $A/archives/$d ]] || die "apt did not download $d"
        dpkg -x "$A/archives/$d" "$W"
        n=$((n + 1))
    done
    { echo "packages: ${PACKAGES[*]}"; printf '%s\n' "$debs"; } > "$W/.vdx-packages"
    rm -rf "$ROOT"
    mv "$W" "$ROOT"
    W=
    log "unpacked $n debs ($(du -sm "$A/archives" | cut -f1) MB) into $ROOT"
}

if [[ ${FORCE:-0} == 1 || $(head -1 "$PKGSTAMP" 2>/dev/null) != "packages: ${PACKAGES[*]}" ]]; then
    fetch_packages
fi

# --- initramfs (rebuilt when one of its inputs changes) ------------------------
read -r -d '' INIT <<'EOF' || true
#!/bin/sh
# /init generated by setup-guest.sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /mnt
# Initialise the kernel's CRNG now, in the background (~1 s of jitter entropy
# under TCG): until then getrandom(GRND_NONBLOCK) fails and libuuid retries
# for up to 1 s per UUID, which made mkfs.ext4 take 4 s instead of 0.3 s.
dd if=/dev/random of=/dev/null bs=1 count=1 2>/dev/null &
echo "E2E-GUEST: init on $(uname -r) (up $(cut -d' ' -f1 /proc/uptime) s)"
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

# elf_dynamic FILE: true if FILE is an ELF64 file with a PT_INTERP program header.
elf_dynamic() {
    local f=$1 phoff phentsize phnum
    [[ -f $f && ! -L $f && $(head -c4 "$f" | od -An -c | tr -d ' ') == '177ELF' ]] || return 1
    phoff=$(od -An -t u8 -j 32 -N 8 "$f" | tr -d ' ')
    phentsize=$(od -An -t u2 -j 54 -N 2 "$f" | tr -d ' ')
    phnum=$(od -An -t u2 -j 56 -N 2 "$f" | tr -d ' ')
    od -An -t u4 -w"$phentsize" -j "$phoff" -N $((phnum * phentsize)) "$f" |
        awk '$1 == 3 { found = 1 } END { exit !found }'
}

# The libraries (paths in ROOT) that the dynamic FILES resolve to, loader
# included, as the unpacked tree's own loader sees them.  Its library path:
# the multiarch directories first, then their subdirectories holding
# libraries (RUNPATHs such as /usr/lib/x86_64-linux-gnu/ceph name the guest's
# path, which only exists inside ROOT).
guest_libs() {
    local ld=$ROOT/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 lp f out
    [[ -x $ld ]] || die "no loader in $ROOT (FORCE=1 to unpack again)"
    lp=$ROOT/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu
    lp+=$(find "$ROOT/lib/x86_64-linux-gnu" "$ROOT/usr/lib/x86_64-linux-gnu" -mindepth 2 \
        -name 'lib*.so*' -printf ':%h\n' | sort -u | tr -d '\n')
    for f in "${FILES[@]}"; do
        elf_dynamic "$ROOT/$f" || continue
        out=$("$ld" --library-path "$lp" --list "$ROOT/$f" 2>&1) || die "$f: $out"
        grep -q 'not found' <<<"$out" && die "$f: unresolved libraries: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
        awk '$2 == "=>" { print $3 }' <<<"$out"
    done | sort -u | while read -r f; do
        [[ $f == "$ROOT"/* ]] || die "a library resolved outside $ROOT: $f"
        echo "${f#"$ROOT"/}"
    done
}

build_initrd() {
    local R f libs
    R=$(mktemp -d "$DIR/.initrd.XXXXXX")
    W=$R
    mkdir -p "$R"/{bin,dev,proc,sys,tmp,mnt,etc,lib/modules}
    for f in "${FILES[@]}"; do
        [[ -e $ROOT/$f || -L $ROOT/$f ]] || die "$f is not in the guest packages (${PACKAGES[*]})"
        mkdir -p "$R/$(dirname "$f")"
        cp -a "$ROOT/$f" "$R/$f"
    done
    libs=$(guest_libs)
    for f in $libs; do
        mkdir -p "$R/$(dirname "$f")"
        cp -L "$ROOT/$f" "$R/$f"
    done
    mkdir -p "$R/lib64"
    ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
    ln -sf busybox "$R/bin/sh"
    ln -sf /proc/self/mounts "$R/etc/mtab"
    cp "$DIR"/modules/* "$R/lib/modules/"
    printf '%s\n' "$INIT" > "$R/init"
    cp "$DEMO" "$R/bin/vdx-demo"
    chmod +x "$R/init" "$R/bin/vdx-demo"
    (cd "$R" && find . | sort | cpio -o -H newc --quiet -R 0:0) | "${COMPRESS_CMD[@]}" > "$DIR/initrd.img.tmp"
    mv "$DIR/initrd.img.tmp" "$DIR/initrd.img"
    log "initrd.img: $(wc -w <<<"$libs") libraries, $(du -sm "$R" | cut -f1) MB unpacked," \
        "$(($(stat -c %s "$DIR/initrd.img") / 1048576)) MB $COMPRESS"
    rm -rf "$R"
    W=
}

stamp=$( {
    cat "${BASH_SOURCE[0]}" "$DEMO" "$DIR/kver" "$PKGSTAMP"
    echo "$COMPRESS"
    cksum "$DIR"/modules/*
} | cksum | cut -d' ' -f1)
if [[ ${FORCE:-0} == 1 || ! -s $DIR/initrd.img || $(cat "$DIR/initrd.stamp" 2>/dev/null) != "$stamp" ]]; then
    log "building initrd.img"
    rm -f "$DIR/initrd.gz" # the name before the guest tools
    build_initrd
    echo "$stamp" > "$DIR/initrd.stamp"
fi

log "kernel $(cat "$DIR/kver"), $(wc -l < "$DIR/modules/load-order") modules, $(($(sed 1d "$PKGSTAMP" | wc -l))) debs"
echo "$DIR"
