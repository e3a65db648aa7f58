#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# End to end: stock QEMU 11.1 (device vfio-user-pci) and a Linux guest whose
# stock nvme driver uses sim:nvme, one backing file throughout.
#   A  `vfio-dext run` (in-process dext), the guest may reboot. Boot 1: the
#      driver bound to class 01:08:02; `nvme id-ctrl` and `nvme smart-log`
#      work; a controller reset (sysfs reset_controller) while reads run, and
#      reads go on (the driver sets up its shadow doorbells again each time:
#      dbbuf_configs); the guest writes BAR0 and STATUS in config space; 4 MiB
#      of random data and its checksum go to the disk; reboot (QEMU resets the device,
#      the reset reaches the dext). Boot 2 verifies the checksum. run's summary
#      must show that no STATUS or BAR write reached the device.
#   B  a `vfio-dext dext` daemon and `vfio-dext serve`; QEMU is SIGKILLed
#      while the guest writes: the server releases every DMA mapping and fd
#      (its own line, the dext's status, its fd count) ...
#   C  ... and the next QEMU attaches to the same server and reads A's data.
#   D  `vfio-dext run --dext` (the daemon): the whole demo (ext4, verified
#      files, fio) passes.
# QEMU and the guest come from scripts/setup-qemu.sh and setup-guest.sh
# (cached). When they cannot be set up here (not root, no package archive)
# the test is skipped (exit 77) and says why.
#
# Usage: test_e2e_nvme.sh VFIO_DEXT_BIN SOURCE_ROOT   (E2E_KEEP=1 keeps the logs)
set -uo pipefail

BIN=${1:?vfio-dext binary}
SRC=${2:?source root}
TMP=$(mktemp -d /tmp/vdx-e2e.XXXXXX)
PIDS=()
PASSED=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [[ -n ${E2E_KEEP:-} ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
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
    echo "$PASSED passed, 1 failed"
    exit 1
}

ok() {
    PASSED=$((PASSED + 1))
    echo "ok   $*"
}

QEMU=$("$SRC/scripts/setup-qemu.sh" 2>"$TMP/setup-qemu.log") ||
    skip "QEMU 11.1 could not be set up: $(tail -1 "$TMP/setup-qemu.log")"
GUEST=$("$SRC/scripts/setup-guest.sh" 2>"$TMP/setup-guest.log") ||
    skip "the test guest could not be set up: $(tail -1 "$TMP/setup-guest.log")"
DISK=$TMP/disk.img
SPEC="sim:nvme,size=128M,file=$DISK"

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.1
    done
}

# Shared by the guest commands: wait for the disk, check driver and class.
# shellcheck disable=SC2016 # expanded by the guest's shell
FIND='n=/dev/nvme0n1;i=0;while [ ! -b $n ]&&[ $i -lt 100 ];do sleep .1;i=$((i+1));done
d=/sys/bus/pci/devices/0000:00:05.0
[ -b $n ]&&[ $(cat $d/class) = 0x010802 ]&&[ $(basename $(readlink $d/driver)) = nvme ]||exit 3'

# The data: 4 MiB at 1 MiB; its md5 in the first sector behind "VDXMARK".
# shellcheck disable=SC2016
READ_DATA='s=$(dd if=$n bs=1M skip=1 count=4 iflag=direct 2>/dev/null|md5sum);s=${s%% *}'

# ---- A: run, reboot ------------------------------------------------------------
# shellcheck disable=SC2016
CMD_A="$FIND"'
m=$(dd if=$n bs=512 count=1 iflag=direct 2>/dev/null|head -c 40)
if [ "${m%% *}" = VDXMARK ];then
'"$READ_DATA"'
echo "E2E: boot 2 read $s";[ "$s" = "${m#VDXMARK }" ];exit
fi
nvme id-ctrl /dev/nvme0|grep -q "^mn[[:space:]]*: vfio-dext sim:nvme"||exit 11
nvme smart-log /dev/nvme0|grep -qi "^critical_warning[[:space:]]*: 0"||exit 12
echo "E2E: id-ctrl and smart-log ok"
r="of=/dev/null iflag=direct";dd if=$n $r bs=4k count=6000& p=$!
sleep .5;echo 1 >/sys/class/nvme/nvme0/reset_controller||exit 16
wait $p&&dd if=$n $r count=256||exit 17
echo "E2E: reset ok"
c=$d/config;w="dd of=$c conv=notrunc"
dd if=$c of=/tmp/b bs=4 skip=4 count=1
printf "\377\377\377\377"|$w bs=4 seek=4;$w if=/tmp/b bs=4 seek=4
printf "\377\377"|$w bs=2 seek=3
echo "E2E: wrote BAR0 and STATUS in config space"
dd if=/dev/urandom of=/tmp/a bs=1M count=4
dd if=/tmp/a of=$n bs=1M seek=1 oflag=direct||exit 13
'"$READ_DATA"'
a=$(md5sum</tmp/a);[ "$s" = "${a%% *}" ]||exit 14
printf "VDXMARK $s"|dd of=$n bs=512 conv=sync oflag=direct||exit 15
echo "E2E: boot 1 wrote $s";reboot -f'

"$BIN" run --device "$SPEC" --qemu "$QEMU" --guest "$GUEST" --memory 512M --reboot \
    --timeout 300 --cmd "$CMD_A" >"$TMP/a.log" 2>"$TMP/a.err" ||
    fail "A: run with a reboot did not pass"
grep -q "E2E: id-ctrl and smart-log ok" "$TMP/a.log" || fail "A: id-ctrl/smart-log"
ok "A: stock nvme driver on sim:nvme; nvme id-ctrl and smart-log work in the guest"
grep -q "^E2E: reset ok" "$TMP/a.log" || fail "A: controller reset under I/O"
dbbuf=$(sed -n 's/^vfio-dext run: device:.* dbbuf_configs=\([0-9]*\).*/\1/p' "$TMP/a.log")
[[ ${dbbuf:-0} -ge 3 ]] ||
    fail "A: the driver did not set up shadow doorbells at each start (dbbuf_configs=${dbbuf:-?})"
ok "A: a controller reset during I/O: reads resume; shadow doorbells set up again (dbbuf_configs=$dbbuf)"
[[ $(grep -c "E2E-GUEST: init on" "$TMP/a.log") -eq 2 ]] || fail "A: the guest did not boot twice"
SUM=$(sed -n 's/^E2E: boot 1 wrote \([0-9a-f]\{32\}\).*/\1/p' "$TMP/a.log")
[[ -n $SUM ]] || fail "A: no checksum written"
grep -q "^E2E: boot 2 read $SUM" "$TMP/a.log" || fail "A: boot 2 did not read boot 1's data"
ok "A: 4 MiB checksummed data survived a guest reboot ($SUM)"
resets=$(sed -n 's/^vfio-dext run: device:.* resets=\([0-9]*\).*/\1/p' "$TMP/a.log")
[[ ${resets:-0} -ge 3 ]] || fail "A: the reboot's reset did not reach the device (resets=${resets:-?})"
ok "A: the reboot reset the device through the dext (resets=$resets)"
grep -q "^E2E: wrote BAR0 and STATUS" "$TMP/a.log" || fail "A: the guest did not write config"
grep -q "config writes that reached the device: command [0-9]* status 0 bar 0$" "$TMP/a.log" ||
    fail "A: a STATUS or BAR write reached the device: $(grep 'reached the device' "$TMP/a.log")"
dropped=$(sed -n 's/.*config writes [0-9]* (\([0-9]*\) dropped.*/\1/p' "$TMP/a.log")
[[ ${dropped:-0} -gt 0 ]] || fail "A: the filter dropped nothing"
ok "A: guest writes to BARs and STATUS never reached the device ($dropped dropped; dext: status 0 bar 0)"

# ---- B: SIGKILL during I/O -----------------------------------------------------
"$BIN" dext --device "$SPEC" --runtime-dir "$TMP/rt" >"$TMP/dext.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -S "$TMP/rt/dext.sock" || fail "B: vfio-dext dext did not start"
"$BIN" serve 0000:00:01.0 --socket "$TMP/vu.sock" --dext "unix:$TMP/rt" >"$TMP/serve.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
wait_for 10 test -S "$TMP/vu.sock" || fail "B: vfio-dext serve did not start"
fds0=$(ls /proc/$SERVE/fd | wc -l)

qemu_boot() { # qemu_boot NAME CMD: QEMU on the serve socket, in the background
    "$QEMU" -accel tcg -smp 2 -m 512M \
        -object memory-backend-memfd,id=mem,size=512M,share=on \
        -machine q35,memory-backend=mem -nographic -vga none -net none -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$GUEST/vmlinux" -initrd "$GUEST/initrd.img" \
        -append "console=ttyS0 quiet panic=-1 e2e_cmd64=$(printf %s "$2" | base64 -w0)" \
        -device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$TMP/vu.sock\",\"type\":\"unix\"},\"addr\":\"05.0\"}" \
        >"$TMP/$1-serial.log" 2>"$TMP/$1-qemu.err" </dev/null &
    QPID=$!
}

# shellcheck disable=SC2016
qemu_boot b "$FIND"'
echo "E2E: io started"
while :; do dd if=/dev/urandom of=/dev/nvme0n1 bs=256k seek=64 count=32 oflag=direct 2>/dev/null; done'
wait_for 120 grep -qs "E2E: io started" "$TMP/b-serial.log" ||
    { kill -KILL "$QPID"; fail "B: the guest did not start its I/O"; }
sleep 2
kill -KILL "$QPID"
wait "$QPID" 2>/dev/null
wait_for 10 grep -q "the VMM detached" "$TMP/serve.log" || fail "B: serve did not see QEMU go"
grep -q "the VMM detached; still held: 0 DMA maps, 0 DMA files, 0 dext DMA registrations" \
    "$TMP/serve.log" || fail "B: serve still holds something: $(grep detached "$TMP/serve.log")"
"$BIN" status --dext "unix:$TMP/rt" --json >"$TMP/status.json" 2>&1 || fail "B: status failed"
grep -q '"dma_regions_live": *0' "$TMP/status.json" || fail "B: the dext kept DMA regions"
grep -q '"dma_regions_live": *[1-9]' "$TMP/status.json" && fail "B: a DMA region is live"
fds1=$(ls /proc/$SERVE/fd | wc -l)
[[ $fds1 -eq $fds0 ]] || fail "B: serve held $fds0 fds before QEMU, $fds1 after it was killed"
ok "B: QEMU SIGKILLed during I/O: serve released every DMA mapping and fd ($fds1 fds, dext dma_regions_live 0)"

# ---- C: the next QEMU on the same server ------------------------------------------
qemu_boot c "$FIND
$READ_DATA"'
echo "E2E: read $s"
[ "$s" = '"$SUM"' ]'
wait "$QPID"
rc=$?
if ! grep -q "E2E-GUEST: result rc=0" "$TMP/c-serial.log" || [[ $rc -ne 1 ]]; then
    fail "C: the next QEMU did not read A's data back (QEMU exit $rc)"
fi
ok "C: the next QEMU attached to the same server and read A's data back (second run, same file)"
t0=$SECONDS
kill -TERM "$SERVE"
wait "$SERVE"
rc=$?
[[ $rc -eq 0 ]] || fail "C: serve exited $rc on SIGTERM"
ok "C: serve stopped on SIGTERM in $((SECONDS - t0)) s, exit 0"

# ---- D: run with the dext as a separate daemon: the whole demo ---------------------
"$BIN" run --dext "unix:$TMP/rt" --qemu "$QEMU" --guest "$GUEST" --timeout 600 \
    >"$TMP/d.log" 2>"$TMP/d.err" || fail "D: the demo through the daemon did not pass"
grep -q "^VDX-SUMMARY: data verified" "$TMP/d.log" || fail "D: no verified data in the summary"
grep -q "^vfio-dext run: PASS: the guest verified its data" "$TMP/d.log" || fail "D: no PASS"
ok "D: vfio-dext run --dext (unix transport): $(grep -m1 '^VDX-SUMMARY: data verified' "$TMP/d.log" | cut -d' ' -f2-)"
echo "$PASSED passed, 0 failed"
