#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# End to end: stock QEMU 11.1 maps sim:testdev's BAR2 (the dext shares it as a
# descriptor; the passthrough backend offers it with a sparse-mmap capability)
# instead of trapping it. One boot per transport:
#   boot 1: `vfio-dext serve --local sim:testdev` (in-process dext);
#   boot 2: a `vfio-dext dext` daemon and `serve --dext unix:DIR` (the BAR's
#           descriptor travels daemon -> serve -> QEMU over SCM_RIGHTS).
# In each, the guest (busybox devmem on the BAR2 address from sysfs) writes
# and reads back two words, then waits for a word the host writes straight
# into the device's BAR2 memory; after power-off the host reads the guest's
# words from that memory. QEMU traces every trapped access
# (vfio_user_region_rw, i.e. each REGION_READ/WRITE it sends): there must be
# none for region 2, while BAR0 reads (registers, trapped) do show up, so the
# count is live.
#
# QEMU and the guest come from scripts/setup-qemu.sh and setup-guest.sh
# (cached). When they cannot be set up here (not root, no package archive) the
# test is skipped (exit 77) and says why.
#
# Usage: test_e2e_bar.sh VFIO_DEXT_BIN SOURCE_ROOT   (E2E_KEEP=1 keeps the logs)
set -uo pipefail

BIN=${1:?vfio-dext binary}
SRC=${2:?source root}
TMP=$(mktemp -d /tmp/vdx-e2e-bar.XXXXXX)
PIDS=()
QPID=

cleanup() {
    local p
    [[ -n $QPID ]] && kill -TERM "$QPID" 2>/dev/null
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [[ -n ${E2E_KEEP:-} ]]; then
        echo "kept $TMP"
    else
        rm -rf "$TMP"
    fi
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
INITRD=$GUEST/initrd.img
[[ -f $INITRD ]] || INITRD=$GUEST/initrd.gz
[[ -f $INITRD ]] || skip "no initramfs in $GUEST"
"$QEMU" -trace help 2>/dev/null | grep -qx vfio_user_region_rw ||
    skip "this QEMU has no vfio_user_region_rw trace event to count trapped accesses"

wait_socket() {
    local _
    for _ in $(seq 1 200); do
        [[ -S $1 ]] && return 0
        sleep 0.05
    done
    return 1
}

# The device's BAR2 memory: a descriptor of the memfd in process $1.
bar2_fd_path() {
    local f
    for f in /proc/"$1"/fd/*; do
        [[ $(readlink "$f" 2>/dev/null) == "/memfd:vfio-dext-testdev-bar2 (deleted)" ]] &&
            { echo "$f"; return 0; }
    done
    return 1
}

# shellcheck disable=SC2016 # expanded by the guest's shell
GUEST_CMD='d=/sys/bus/pci/devices/0000:00:05.0
[ -d $d ] || { echo "no device at 00:05.0"; exit 3; }
[ "$(cat $d/vendor)" = 0x7e57 ] || { echo "vendor $(cat $d/vendor)"; exit 4; }
echo 1 > $d/enable
set -- $(sed -n 1p $d/resource); bar0=$(($1))
set -- $(sed -n 3p $d/resource); base=$(($1)); size=$(($2 - $1 + 1))
echo "E2E: BAR0 at $(printf 0x%x $bar0), BAR2 at $(printf 0x%x $base) size $size"
[ $base -ne 0 ] && [ $size -eq 1048576 ] || exit 5
[ "$(devmem $bar0 32)" = 0x7E57DE01 ] || { echo "BAR0 id $(devmem $bar0 32)"; exit 6; }
devmem $((base + 0x100)) 32 0x600dcafe
devmem $((base + size - 8)) 32 0x0badf00d
v1=$(devmem $((base + 0x100)) 32); v2=$(devmem $((base + size - 8)) 32)
echo "E2E: read back $v1 $v2"
[ "$v1" = 0x600DCAFE ] && [ "$v2" = 0x0BADF00D ] || exit 7
echo "E2E: ready"
i=0
while [ "$(devmem $((base + 0x200)) 32)" != 0x00C0FFEE ] && [ $i -lt 600 ]; do
    sleep 0.1; i=$((i + 1))
done
echo "E2E: host word $(devmem $((base + 0x200)) 32)"
[ "$(devmem $((base + 0x200)) 32)" = 0x00C0FFEE ] || exit 8'

# boot NAME OWNER_PID: one guest run; OWNER_PID holds the device's BAR2 memory.
boot() {
    local name=$1 owner=$2 mem rc _ got
    mem=$(bar2_fd_path "$owner") || fail "$name: no BAR2 memfd in process $owner"
    timeout 300 "$QEMU" -accel tcg -smp 2 -m 512M \
        -object memory-backend-memfd,id=mem,size=512M,share=on \
        -machine q35,memory-backend=mem -nographic -vga none -net none -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -trace enable=vfio_user_region_rw -trace enable=vfio_region_mmap \
        -D "$TMP/$name-trace.log" \
        -kernel "$GUEST/vmlinux" -initrd "$INITRD" \
        -append "console=ttyS0 quiet panic=-1 e2e_cmd64=$(printf %s "$GUEST_CMD" | base64 -w0)" \
        -device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$TMP/vu.sock\",\"type\":\"unix\"},\"addr\":\"05.0\"}" \
        >"$TMP/$name-serial.log" 2>"$TMP/$name-qemu.err" </dev/null &
    QPID=$!
    for _ in $(seq 1 2400); do
        grep -q "E2E: ready" "$TMP/$name-serial.log" 2>/dev/null && break
        kill -0 "$QPID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "E2E: ready" "$TMP/$name-serial.log" || fail "$name: the guest never got ready"
    # 0x00c0ffee, little-endian, at BAR2 + 0x200, written as the device would.
    printf '\xee\xff\xc0\x00' | dd of="$mem" bs=1 seek=512 conv=notrunc status=none ||
        fail "$name: cannot write the device's BAR2 memory"
    wait "$QPID"
    rc=$?
    QPID=
    if ! grep -q "E2E-GUEST: result rc=0" "$TMP/$name-serial.log" || [[ $rc -ne 1 ]]; then
        fail "$name: the guest failed (QEMU exit $rc)"
    fi
    got=$(od -An -tx4 -j 256 -N 4 "$mem" | tr -d ' ')
    [[ $got == 600dcafe ]] || fail "$name: the device's BAR2 holds $got, not the guest's 600dcafe"
    got=$(od -An -tx4 -j $((1048576 - 8)) -N 4 "$mem" | tr -d ' ')
    [[ $got == 0badf00d ]] || fail "$name: the device's BAR2 end holds $got, not 0badf00d"
    grep -q "vfio_region_mmap.*BAR 2" "$TMP/$name-trace.log" ||
        fail "$name: QEMU did not mmap BAR2"
    # Trapped accesses QEMU sent: none for BAR2, some for BAR0 (the id read).
    got=$(grep -c "vfio_user_region_rw  *region 2 " "$TMP/$name-trace.log")
    [[ $got -eq 0 ]] || fail "$name: $got trapped BAR2 accesses (REGION_READ/WRITE)"
    got=$(grep -c "vfio_user_region_rw  *region 0 " "$TMP/$name-trace.log")
    [[ $got -gt 0 ]] || fail "$name: no trapped BAR0 access traced: is the trace live?"
}

stop_all() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=()
    rm -f "$TMP/vu.sock"
}

"$BIN" serve 0000:00:01.0 --socket "$TMP/vu.sock" --local sim:testdev \
    >"$TMP/serve1.log" 2>&1 &
PIDS+=($!)
wait_socket "$TMP/vu.sock" || fail "vfio-dext serve did not start"
boot boot1 "${PIDS[0]}"
echo "ok   boot 1 (in-process dext): the guest wrote, read and saw the device's BAR2 through QEMU's mapping; no trapped BAR2 access"
stop_all

"$BIN" dext --device sim:testdev --runtime-dir "$TMP/rt" >"$TMP/dext.log" 2>&1 &
PIDS+=($!)
wait_socket "$TMP/rt/dext.sock" || fail "vfio-dext dext did not start"
"$BIN" serve 0000:00:01.0 --socket "$TMP/vu.sock" --dext "unix:$TMP/rt" \
    >"$TMP/serve2.log" 2>&1 &
PIDS+=($!)
wait_socket "$TMP/vu.sock" || fail "vfio-dext serve (unix) did not start"
boot boot2 "${PIDS[0]}"
echo "ok   boot 2 (dext daemon): the same, with BAR2's descriptor passed daemon -> serve -> QEMU"
stop_all
echo "2 passed, 0 failed"
