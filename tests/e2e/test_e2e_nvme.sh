#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# End to end: stock QEMU 11.1 (device vfio-user-pci) boots a Linux guest whose
# stock nvme driver uses sim:nvme, served by `vfio-dext serve`.
#   boot 1: the dext in-process (serve --local); the guest checks the driver
#           bound to a class 01:08:02 function, writes 4 MiB of random data
#           with O_DIRECT, reads it back and compares checksums;
#   boot 2: a new QEMU, the dext as a separate daemon (unix transport), the
#           same backing file: the guest reads boot 1's data back.
# QEMU and the guest come from scripts/setup-qemu.sh and setup-guest.sh
# (cached). When they cannot be set up here (not root, no package archive)
# the test is skipped (exit 77) and says why.
#
# Usage: test_e2e_nvme.sh VFIO_DEXT_BIN SOURCE_ROOT
set -uo pipefail

BIN=${1:?vfio-dext binary}
SRC=${2:?source root}
TMP=$(mktemp -d /tmp/vdx-e2e.XXXXXX)
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

skip() {
    echo "SKIP: $*"
    exit 77
}

fail() {
    echo "FAIL: $*"
    for f in "$TMP"/*.log "$TMP"/*.err; do
        [[ -f $f ]] && { echo "--- $f"; tail -40 "$f"; }
    done
    exit 1
}

QEMU=$("$SRC/scripts/setup-qemu.sh" 2>"$TMP/setup-qemu.log") ||
    skip "QEMU 11.1 could not be set up: $(tail -1 "$TMP/setup-qemu.log")"
GUEST=$("$SRC/scripts/setup-guest.sh" 2>"$TMP/setup-guest.log") ||
    skip "the test guest could not be set up: $(tail -1 "$TMP/setup-guest.log")"

wait_socket() {
    local _
    for _ in $(seq 1 200); do
        [[ -S $1 ]] && return 0
        sleep 0.05
    done
    return 1
}

# boot NAME CMD: one guest boot running CMD; true if the guest reported rc=0.
boot() {
    local name=$1 cmd=$2 rc
    timeout 300 "$QEMU" -accel tcg -smp 2 -m 512M \
        -object memory-backend-memfd,id=mem,size=512M,share=on \
        -machine q35,memory-backend=mem -nographic -vga none -net none -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$GUEST/vmlinux" -initrd "$GUEST/initrd.img" \
        -append "console=ttyS0 quiet panic=-1 e2e_cmd64=$(printf %s "$cmd" | base64 -w0)" \
        -device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$TMP/vu.sock\",\"type\":\"unix\"},\"addr\":\"05.0\"}" \
        >"$TMP/$name-serial.log" 2>"$TMP/$name-qemu.err" </dev/null
    rc=$?
    grep -q "E2E-GUEST: result rc=0" "$TMP/$name-serial.log" && [[ $rc -eq 1 ]]
}

# Shared by both boots: wait for the disk, check the driver and class.
# shellcheck disable=SC2016 # expanded by the guest's shell
GUEST_FIND='i=0; while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
test -b /dev/nvme0n1 || { echo "no /dev/nvme0n1"; dmesg | grep -i nvme; exit 3; }
d=/sys/bus/pci/devices/0000:00:05.0
echo "E2E: class $(cat $d/class) driver $(basename "$(readlink $d/driver)")"
[ "$(cat $d/class)" = 0x010802 ] || exit 4
[ "$(basename "$(readlink $d/driver)")" = nvme ] || exit 5
[ "$(blockdev --getsize64 /dev/nvme0n1)" = 67108864 ] || exit 6'

serve_local() {
    "$BIN" serve 0000:00:01.0 --socket "$TMP/vu.sock" \
        --local "sim:nvme,size=64M,file=$TMP/disk.img" >"$TMP/serve1.log" 2>&1 &
    PIDS+=($!)
    wait_socket "$TMP/vu.sock" || fail "vfio-dext serve did not start"
}

serve_daemon() {
    "$BIN" dext --device "sim:nvme,size=64M,file=$TMP/disk.img" \
        --runtime-dir "$TMP/rt" >"$TMP/dext.log" 2>&1 &
    PIDS+=($!)
    wait_socket "$TMP/rt/dext.sock" || fail "vfio-dext dext did not start"
    "$BIN" serve 0000:00:01.0 --socket "$TMP/vu.sock" --dext "unix:$TMP/rt" \
        >"$TMP/serve2.log" 2>&1 &
    PIDS+=($!)
    wait_socket "$TMP/vu.sock" || fail "vfio-dext serve (unix) did not start"
}

stop_all() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=()
}

serve_local
boot boot1 "$GUEST_FIND
dd if=/dev/urandom of=/tmp/a bs=1M count=4 2>/dev/null
dd if=/tmp/a of=/dev/nvme0n1 bs=1M oflag=direct 2>/dev/null || exit 7
dd if=/dev/nvme0n1 of=/tmp/b bs=1M count=4 iflag=direct 2>/dev/null || exit 8
a=\$(md5sum < /tmp/a); b=\$(md5sum < /tmp/b)
echo \"E2E-MD5 \${a%% *}\"
[ \"\$a\" = \"\$b\" ] || exit 9" || fail "boot 1 (in-process dext): the guest did not verify its data"
sum=$(grep -o 'E2E-MD5 [0-9a-f]\{32\}' "$TMP/boot1-serial.log" | head -1 | cut -d' ' -f2)
[[ -n $sum ]] || fail "boot 1 printed no checksum"
echo "ok   boot 1: stock nvme driver bound to sim:nvme, 4 MiB written and verified ($sum)"
stop_all
rm -f "$TMP/vu.sock"

serve_daemon
boot boot2 "$GUEST_FIND
c=\$(dd if=/dev/nvme0n1 bs=1M count=4 iflag=direct 2>/dev/null | md5sum)
echo \"E2E-MD5 \${c%% *}\"
[ \"\${c%% *}\" = $sum ] || exit 10" || fail "boot 2 (daemon, same backing file): data not read back"
echo "ok   boot 2: a second QEMU through the dext daemon read boot 1's data back"
echo "2 passed, 0 failed"
