#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# vdx-demo - the test guest's demo on a passed-through NVMe disk.
# Installed as /bin/vdx-demo by scripts/setup-guest.sh (docs/guest.md); the
# host runs it with e2e_cmd64=$(printf vdx-demo | base64 -w0), which is what
# `vfio-dext run` does by default.
#
#   1. waits (VDX_WAIT seconds) for /dev/$VDX_DEV, shows the PCI function and
#      driver behind it (class 0x010802, driver nvme), the controller's
#      identity (nvme id-ctrl) and its SMART log (nvme smart-log);
#   2. makes an ext4 file system on the namespace and mounts it;
#   3. writes VDX_FILES files of random data, VDX_MIB MiB in all (fio makes
#      the data: unique per block, and much faster than /dev/urandom under
#      TCG), records their md5sums, syncs and unmounts;
#   4. e2fsck -n -f; mounts again, drops the page cache, verifies every md5sum;
#   5. fio on a file in the file system (VDX_FIO_MIB MiB, at most half the
#      free space), one process: 128k sequential write QD8 with fio's verify
#      (every block carries its own offset, checked after the write), then
#      4k random read QD32 for VDX_FIO_SECONDS; direct I/O, libaio;
#   6. the nvme lines of /proc/interrupts before and after;
#   7. "VDX-SUMMARY: " lines.
# It DESTROYS the data on /dev/$VDX_DEV.
#
# Settings (environment; e.g. the command "VDX_MIB=64 vdx-demo"):
#   VDX_DEV nvme0n1, VDX_WAIT 10, VDX_FILES 8, VDX_MIB 32, VDX_FIO_MIB 128,
#   VDX_FIO_SECONDS 3, VDX_MNT /mnt/vdx.
# Exit: 0 when every file verified and fio (with its verify) succeeded;
# otherwise "VDX-SUMMARY: FAILED: <what>" and 2 no disk, 3 not an nvme-bound
# class 0x010802 function, 4 nvme-cli failed, 5 mkfs/mount failed, 6 writing
# the files failed, 7 e2fsck found errors, 8 a checksum mismatch, 9 fio failed.

VDX_DEV=${VDX_DEV:-nvme0n1}
VDX_WAIT=${VDX_WAIT:-10}
VDX_FILES=${VDX_FILES:-8}
VDX_MIB=${VDX_MIB:-32}
VDX_FIO_MIB=${VDX_FIO_MIB:-128}
VDX_FIO_SECONDS=${VDX_FIO_SECONDS:-3}
VDX_MNT=${VDX_MNT:-/mnt/vdx}

DEV=/dev/$VDX_DEV
CTRL=${VDX_DEV%n*} # nvme0n1 -> nvme0
T=/tmp/vdx-demo
SUMMARY=$T/summary
mkdir -p "$T" "$VDX_MNT"
: > "$SUMMARY"

now() { cut -d' ' -f1 /proc/uptime; }
T0=$(now)
say() { echo "vdx-demo: [$(elapsed) s] $*"; }
summary() { echo "$*" >> "$SUMMARY"; }
elapsed() { awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# finish RC [WHAT]: the summary, then exit RC (a failure says WHAT failed).
finish() {
    [ "$1" -eq 0 ] && summary "result: PASS: every file verified, fio verify ok ($(elapsed) s)"
    [ "$1" -eq 0 ] || summary "FAILED: $2 (exit $1, after $(elapsed) s)"
    grep -qs " $VDX_MNT " /proc/mounts && umount "$VDX_MNT"
    echo
    sed 's/^/VDX-SUMMARY: /' "$SUMMARY"
    exit "$1"
}

# "nvme0q0=12 nvme0q1=34 ...": each nvme vector's count summed over the CPUs.
irq_counts() {
    awk 'NR == 1 { ncpu = NF; next }
         $NF ~ /^nvme/ { s = 0; for (i = 2; i <= ncpu + 1; i++) s += $i; printf "%s%s=%d", sep, $NF, s; sep = " " }
         END { print "" }' /proc/interrupts
}

irq_total() { echo "$1" | tr ' ' '\n' | awk -F= '{ s += $2 } END { print s + 0 }'; }

# field NAME < nvme-cli output: the value of "NAME : value" (first word for numbers).
field() { sed -n "s/^$1[[:space:]]*: *//p" | head -1 | sed 's/[[:space:]]*$//'; }
number() { field "$1" | sed 's/^\([0-9]*\).*/\1/'; }

# --- 1. the disk, its PCI function, the controller ------------------------------
i=0
while [ ! -b "$DEV" ] && [ $i -lt $((VDX_WAIT * 10)) ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ ! -b "$DEV" ]; then
    dmesg | grep -i nvme | tail -20
    finish 2 "no $DEV after ${VDX_WAIT} s (is the device passed through, and did nvme bind?)"
fi
IRQ0=$(irq_counts)

pci=$(readlink -f "/sys/class/nvme/$CTRL/device")
bdf=${pci##*/}
class=$(cat "$pci/class" 2>/dev/null)
ids="$(sed 's/^0x//' "$pci/vendor"):$(sed 's/^0x//' "$pci/device")"
drv=$(basename "$(readlink "$pci/driver")")
nvec=$(find "$pci/msi_irqs" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
case $(cat "$pci/msi_irqs/"* 2>/dev/null | head -1) in
msix) mode=MSI-X ;;
msi) mode=MSI ;;
*) mode=INTx ;;
esac
say "$DEV is $CTRL on PCI $bdf [$ids] class $class, driver $drv, $nvec $mode vectors"
summary "device: $DEV on PCI $bdf [$ids] class $class, driver $drv, $nvec $mode vectors"
if [ "$class" != 0x010802 ] || [ "$drv" != nvme ]; then
    finish 3 "$bdf is class $class driver $drv, expected class 0x010802 bound to nvme"
fi

nvme id-ctrl "/dev/$CTRL" > "$T/id-ctrl" || finish 4 "nvme id-ctrl /dev/$CTRL failed"
nvme smart-log "/dev/$CTRL" > "$T/smart0" || finish 4 "nvme smart-log /dev/$CTRL failed"
mn=$(field mn < "$T/id-ctrl")
sn=$(field sn < "$T/id-ctrl")
fr=$(field fr < "$T/id-ctrl")
say "controller: vid $(field vid < "$T/id-ctrl") model '$mn' serial '$sn' firmware '$fr'," \
    "mdts $(field mdts < "$T/id-ctrl"), $(field nn < "$T/id-ctrl") namespace(s)"
summary "controller: $mn serial $sn fw $fr"
sed -n '/^critical_warning/p; /^temperature/p; /^Data Units/p; /^host_.*commands/p' "$T/smart0" |
    sed 's/[[:space:]]\{1,\}/ /g; s/^/vdx-demo: smart-log: /'
size=$(blockdev --getsize64 "$DEV")
say "namespace $DEV: $((size / 1048576)) MiB"

# --- 2. file system ------------------------------------------------------------
say "mkfs.ext4 $DEV"
# lazy init: mkfs does not zero the inode tables and journal (the demo's
# disk is fresh or disposable); noinit_itable keeps the kernel from doing it
# in the background during the measurements
mkfs.ext4 -F -q -L vdx-demo -E lazy_itable_init=1,lazy_journal_init=1 "$DEV" > "$T/mkfs" 2>&1 ||
    { cat "$T/mkfs"; finish 5 "mkfs.ext4 $DEV failed"; }
mount -t ext4 -o noinit_itable "$DEV" "$VDX_MNT" || finish 5 "mount $DEV failed"

# --- 3. files of random data ---------------------------------------------------
kib=$((VDX_MIB * 1024 / VDX_FILES))
if [ "$kib" -ge 128 ]; then
    kib=$((kib / 128 * 128)) bs=128k # whole blocks
else
    kib=$((kib / 4 * 4)) bs=4k
fi
[ "$kib" -ge 4 ] || finish 6 "VDX_MIB=$VDX_MIB is too small for $VDX_FILES files"
total=$((kib * VDX_FILES))
[ $((total % 1024)) -eq 0 ] && total="$((total / 1024)) MiB" || total="$total KiB"
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
say "writing $VDX_FILES files of $kib KiB of random data (fio, seed $seed)"
# refill_buffers: fresh random data for every block, so no two blocks are alike
# shellcheck disable=SC2016 # $filenum is fio's
fio --name=vdx-files --directory="$VDX_MNT" --filename_format='file$filenum' \
    --nrfiles="$VDX_FILES" --filesize="${kib}k" --size="$((kib * VDX_FILES))k" \
    --rw=write --bs="$bs" --ioengine=psync --refill_buffers --randseed="$seed" \
    --file_service_type=sequential --end_fsync=1 --eta=never --output="$T/files.out" ||
    { cat "$T/files.out"; finish 6 "writing the files failed"; }
(cd "$VDX_MNT" && md5sum file*) > "$T/md5" || finish 6 "md5sum of the new files failed"
nfiles=$(wc -l < "$T/md5")
[ "$nfiles" -eq "$VDX_FILES" ] || finish 6 "fio made $nfiles files, not $VDX_FILES"
sync
umount "$VDX_MNT" || finish 5 "umount $VDX_MNT failed"

# --- 4. check, remount cold, verify --------------------------------------------
say "e2fsck -n -f $DEV"
e2fsck -n -f "$DEV" > "$T/fsck" 2>&1
rc=$?
sed 's/^/vdx-demo: e2fsck: /' "$T/fsck" | tail -2
[ $rc -eq 0 ] || finish 7 "e2fsck -n found errors in the file system (rc $rc)"
fsck_line=$(tail -1 "$T/fsck" | sed 's/^[^:]*: //')
summary "file system: ext4 on $DEV ($((size / 1048576)) MiB), e2fsck clean: $fsck_line"

mount -t ext4 -o noinit_itable "$DEV" "$VDX_MNT" || finish 5 "mount $DEV (again) failed"
echo 3 > /proc/sys/vm/drop_caches
(cd "$VDX_MNT" && md5sum -c "$T/md5") > "$T/verify" 2>&1
ok=$(grep -c ': OK$' "$T/verify")
say "verified $ok of $nfiles files after a remount with a cold page cache"
if [ "$ok" -ne "$nfiles" ]; then
    grep -v ': OK$' "$T/verify"
    finish 8 "$((nfiles - ok)) of $nfiles files do not match their md5sum"
fi
summary "data verified: $nfiles files, $total, md5 ok"

# --- 5. fio ----------------------------------------------------------------------
free_mib=$(df -k "$VDX_MNT" | awk 'NR == 2 { print int($4 / 1024) }')
fio_mib=$VDX_FIO_MIB
[ "$fio_mib" -le $((free_mib / 2)) ] || fio_mib=$((free_mib / 2))
[ "$fio_mib" -ge 8 ] || finish 9 "no room for fio's file ($free_mib MiB free)"
say "fio: 128k seq write QD8 of $fio_mib MiB, verified, then 4k randread QD32 for ${VDX_FIO_SECONDS} s"
# overwrite=1: fio lays the file out first, so the write job measures writes
# to allocated blocks (extending direct writes on ext4 allocate and are
# serialised: about a third of the speed under TCG).  verify=pattern with %o:
# each block holds its own offset, so a lost or misplaced write fails the
# verify; it costs ~10% of the write speed under TCG, checksums (crc32c,
# xxhash) cost 60-70% (docs/guest.md).
# terse v3: a line per job; read bw KiB/s $7, IOPS $8; write bw $48, IOPS $49
fio --filename="$VDX_MNT/fio.dat" --size="${fio_mib}m" --direct=1 --ioengine=libaio \
    --output-format=terse --terse-version=3 --output="$T/fio.out" --eta=never \
    --name=seqwrite --rw=write --bs=128k --iodepth=8 --overwrite=1 \
    --verify=pattern --verify_pattern=%o --verify_fatal=1 \
    --name=randread --stonewall --rw=randread --bs=4k --iodepth=32 --norandommap \
    --randrepeat=0 --runtime="$VDX_FIO_SECONDS" --time_based
rc=$?
if [ $rc -ne 0 ]; then
    cat "$T/fio.out"
    finish 9 "fio failed (rc $rc): I/O error or a block that failed fio's verify"
fi
read -r wmb iops rmb <<EOF
$(awk -F';' '$3 == "seqwrite" { w = $48 } $3 == "randread" { r = $7; iops = $8 }
             END { printf "%.1f %d %.1f\n", w * 1024 / 1e6, iops, r * 1024 / 1e6 }' "$T/fio.out")
EOF
summary "fio 4k randread qd32: $iops IOPS, $rmb MB/s"
summary "fio 128k seq write qd8: $wmb MB/s ($fio_mib MiB, fio verify ok)"
say "fio: seq write $wmb MB/s; randread $iops IOPS, $rmb MB/s"

# --- 6. interrupts, SMART after ---------------------------------------------------
IRQ1=$(irq_counts)
say "interrupts before: $IRQ0"
say "interrupts after:  $IRQ1"
summary "interrupts: $IRQ1 (+$(($(irq_total "$IRQ1") - $(irq_total "$IRQ0"))) during the demo)"
if nvme smart-log "/dev/$CTRL" > "$T/smart1"; then
    summary "smart-log: critical_warning $(number critical_warning < "$T/smart1")," \
        "temperature $(number temperature < "$T/smart1") C," \
        "data units written $(number 'Data Units Written' < "$T/smart0") -> $(number 'Data Units Written' < "$T/smart1")," \
        "read $(number 'Data Units Read' < "$T/smart0") -> $(number 'Data Units Read' < "$T/smart1") (units of 512 kB)"
fi
finish 0
