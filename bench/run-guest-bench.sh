#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The guest benchmark: fio in the project's test guest (QEMU 11.1, TCG), on
#   vfio-user  our sim:nvme served by `vfio-dext run` (vfio-user-pci), and
#   qemu-nvme  QEMU's own emulated NVMe (-device nvme),
# with the same guest, the same QEMU arguments and the same 1 GiB backing file
# in tmpfs. Jobs (fio, libaio, direct, whole device):
#   4k randread QD1, 4k randread QD32, 128k seq read QD8, 128k seq write QD8.
# Boot b of both devices is a pair, run back to back, so drift on this shared
# host hits both. Prints per row the medians over the pairs of each device and
# of the pair's ratio ours / QEMU's: IOPS for the 4k rows, MB/s (10^6 B/s) for
# the 128k rows; >= 1.0 means at least as fast as QEMU's own emulation. Pairs
# where other processes took more than MAX_FOREIGN % of a core during either
# boot are left out (all are used if none is clean). Also the interrupts per
# I/O in the guest and, for vfio-user, the server's messages, trapped BAR
# writes and interrupts per I/O,
# and per boot the host CPU of the server and of QEMU plus the host load
# (/proc/loadavg, CPU used by processes outside the boot: the host is shared).
#
# Usage: bench/run-guest-bench.sh [--json] [--boots N] [--runtime SECONDS]
#                                 [--keep DIR] [--report DIR] [--max-foreign PCT]
#   --keep DIR          keep the boots' logs and the raw results in DIR
#   --report DIR        boot nothing: print the summary of a run kept with --keep
#   --max-foreign PCT   a pair is clean when foreign CPU <= PCT (default 5)
# Environment: BUILD (default build), VFIO_DEXT_BIN, QEMU / GUEST (else the
# setup scripts provide them).
set -euo pipefail

cd "$(dirname "$0")/.."
JSON=0
BOOTS=1
RUNTIME=10
KEEP=
REPORT=
MAX_FOREIGN=5
while (($#)); do
    case $1 in
    --json) JSON=1 ;;
    --boots) BOOTS=${2:?--boots N}; shift ;;
    --runtime) RUNTIME=${2:?--runtime SECONDS}; shift ;;
    --keep) KEEP=${2:?--keep DIR}; shift ;;
    --report) REPORT=${2:?--report DIR}; shift ;;
    --max-foreign) MAX_FOREIGN=${2:?--max-foreign PCT}; shift ;;
    -h | --help) awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "run-guest-bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $BOOTS =~ ^[1-9][0-9]*$ && $RUNTIME =~ ^[1-9][0-9]*$ ]] ||
    { echo "run-guest-bench: --boots and --runtime take positive integers" >&2; exit 2; }
[[ $MAX_FOREIGN =~ ^[0-9]+([.][0-9]+)?$ ]] ||
    { echo "run-guest-bench: --max-foreign takes a number (percent of one core)" >&2; exit 2; }

if [[ -n $REPORT ]]; then
    [[ -s $REPORT/results ]] || { echo "run-guest-bench: no $REPORT/results" >&2; exit 2; }
    read -r BOOTS RUNTIME <"$REPORT/params"
else

BUILD=${BUILD:-build}
BIN=${VFIO_DEXT_BIN:-$BUILD/src/cli/vfio-dext}
if [[ -z ${VFIO_DEXT_BIN:-} ]]; then
    [[ -f $BUILD/build.ninja ]] || meson setup "$BUILD" >&2
    ninja -C "$BUILD" >&2
fi
QEMU=${QEMU:-$(scripts/setup-qemu.sh)}
GUEST=${GUEST:-$(scripts/setup-guest.sh)}
INITRD=$GUEST/initrd.img

IMG=/dev/shm/vfio-dext-gbench.$$.img
if [[ -n $KEEP ]]; then
    mkdir -p "$KEEP"; W=$KEEP; : >"$W/results"
    trap 'rm -f "$IMG"' EXIT
else
    W=$(mktemp -d /tmp/vfio-dext-gbench.XXXXXX)
    trap 'rm -rf "$W" "$IMG"' EXIT
fi
echo "$BOOTS $RUNTIME" >"$W/params"
# fully allocated, so neither device pays for tmpfs page allocation
dd if=/dev/zero of="$IMG" bs=1M count=1024 status=none

# The guest: one fio run per job; "BENCH name iops kib_s clat_p50_us irqs"
# (the I/O queues' interrupts during the job). fio's terse format v3: read
# iops field 8, bw 7, clat percentiles 18-37; write +41.
# shellcheck disable=SC2016 # expanded by the guest's shell
GCMD='i=0; while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
irqs() { awk "/nvme0q[1-9]/{for(i=2;i<=NF;i++)if(\$i~/^[0-9]+\$/)s+=\$i} END{print s+0}" /proc/interrupts; }
for j in "4k-randread-qd1 randread 4k 1" "4k-randread-qd32 randread 4k 32" "128k-read-qd8 read 128k 8" "128k-write-qd8 write 128k 8"; do
set -- $j; a=$(irqs)
fio --name=$1 --filename=/dev/nvme0n1 --direct=1 --ioengine=libaio --rw=$2 --bs=$3 --iodepth=$4 --runtime=RT --time_based --minimal >/tmp/o || exit 1
b=$(irqs)
awk -F";" -v n=$1 -v q=$((b-a)) "{o=(\$8>0)?0:41; p=0; for(i=18+o;i<=37+o;i++) if(\$i~/^50\\.0+%=/){split(\$i,x,\"=\");p=x[2]}
printf \"BENCH %s %s %s %s %s\\n\",n,\$(8+o),\$(7+o),p,q}" /tmp/o
done'
GCMD=${GCMD//--runtime=RT/--runtime=$RUNTIME}

COMMON=(-accel tcg -smp 2 -m 1024M
    -object memory-backend-memfd,id=vdx-ram,size=1024M,share=on
    -machine q35,memory-backend=vdx-ram -nographic -vga none -net none -no-reboot
    -device isa-debug-exit,iobase=0xf4,iosize=0x04)

boot_vfio_user() {
    "$BIN" run --device "sim:nvme,size=1G,file=$IMG" --qemu "$QEMU" --guest "$GUEST" \
        --timeout 900 --cmd "$GCMD" >"$1" 2>"$1.err"
}

boot_qemu_nvme() {
    timeout 900 "$QEMU" "${COMMON[@]}" -kernel "$GUEST/vmlinux" -initrd "$INITRD" \
        -append "console=ttyS0 quiet panic=-1 e2e_cmd64=$(printf %s "$GCMD" | base64 -w0)" \
        -drive "file=$IMG,if=none,id=d0,format=raw,cache=none,aio=threads" \
        -device nvme,drive=d0,serial=vdxbench >"$1" 2>"$1.err" </dev/null || true
}

# cpu_watch PID OUT: while PID lives, writes "TICKS_PID TICKS_CHILD" to OUT every
# 0.2 s (utime+stime from /proc/PID/stat, in clock ticks; CHILD is its QEMU). For
# vfio-user PID is `vfio-dext run` (the server; QEMU is its child), for qemu-nvme
# PID is timeout(1) and the child QEMU.
cpu_watch() {
    local pid=$1 out=$2 kid= f k t1=0 t2=0
    while [[ -e /proc/$pid ]]; do
        { read -r -a f <"/proc/$pid/stat"; } 2>/dev/null || break
        t1=$((f[13] + f[14]))
        [[ -n $kid ]] || kid=$(pgrep -P "$pid" | head -1 || true)
        if [[ -n $kid ]] && { read -r -a k <"/proc/$kid/stat"; } 2>/dev/null; then t2=$((k[13] + k[14])); fi
        echo "$t1 $t2" >"$out"
        sleep 0.2
    done
}
# busy and total jiffies of the whole host (all CPUs), from /proc/stat
host_ticks() {
    local c u n sy id io irq sirq st _
    read -r c u n sy id io irq sirq st _ </proc/stat
    echo "$((u + n + sy + irq + sirq + st)) $((u + n + sy + id + io + irq + sirq + st))"
}
NCPU=$(nproc)
HZ=$(getconf CLK_TCK)

for b in $(seq 1 "$BOOTS"); do
    for dev in vfio-user qemu-nvme; do
        echo "run-guest-bench: boot $b of $BOOTS: $dev" >&2
        out=$W/$dev.$b.log
        read -r l1 _ </proc/loadavg
        read -r hb0 ht0 < <(host_ticks)
        t0=$(date +%s.%N)
        if [[ $dev == vfio-user ]]; then boot_vfio_user "$out" & else boot_qemu_nvme "$out" & fi
        bp=$!
        # the function runs in a subshell (bash) unless bash exec'd the command:
        # watch vfio-dext / timeout, not the subshell
        wp=$bp
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            [[ $(cat "/proc/$wp/comm" 2>/dev/null) == bash ]] || break
            sleep 0.05
            wp=$(pgrep -P "$bp" | head -1 || echo "$bp")
        done
        cpu_watch "$wp" "$W/cpu.$dev.$b" &
        cw=$!
        wait "$bp" || true
        wait "$cw" || true
        t1=$(date +%s.%N)
        read -r hb1 ht1 < <(host_ticks)
        read -r l2 _ </proc/loadavg
        read -r cs cq <"$W/cpu.$dev.$b" || { cs=0; cq=0; }
        # foreign = host busy minus this boot's processes, in % of one core
        awk -v d=$dev -v b=$b -v t0=$t0 -v t1=$t1 -v cs=$cs -v cq=$cq -v hz=$HZ -v n=$NCPU \
            -v hb=$((hb1 - hb0)) -v ht=$((ht1 - ht0)) -v l1=$l1 -v l2=$l2 'BEGIN {
            f = ht > 0 ? 100 * (hb - cs - cq) / (ht / n) : 0; if (f < 0) f = 0
            printf "host %s %s %.1f %.2f %.2f %.1f %s %s\n", d, b, t1 - t0, cs / hz, cq / hz, f, l1, l2 }' >>"$W/results"
        n=$(grep -c '^BENCH ' "$out" || true)
        if [[ $n -ne 4 ]]; then
            echo "run-guest-bench: $dev boot $b produced $n of 4 results; its log:" >&2
            tail -30 "$out" "$out.err" >&2
            exit 1
        fi
        grep '^BENCH ' "$out" | sed "s/^BENCH /$dev $b /" >>"$W/results"
        if [[ $dev == vfio-user ]]; then
            sed -n 's/.* client(s), \([0-9]*\) messages ([0-9]* errors), \([0-9]*\) interrupts delivered;.*BAR accesses trapped \([0-9]*\) reads \([0-9]*\) writes.*/msgs '"$b"' \1 \2 \3 \4/p' "$out" >>"$W/results"
            sed -n 's/.*device: .*io_cmds=\([0-9]*\) .*interrupts_raised=\([0-9]*\).*/dev '"$b"' \1 \2/p' "$out" >>"$W/results"
        fi
    done
done
fi
W=${REPORT:-$W}

# results: "DEV BOOT JOB IOPS KIB_S P50 IRQS", "msgs BOOT MESSAGES IRQS_DELIVERED
# BAR_READS BAR_WRITES" (vfio-user) and "host DEV BOOT WALL_S SERVER_CPU_S QEMU_CPU_S
# FOREIGN_PCT LOAD1_BEFORE LOAD1_AFTER"
awk -v json="$JSON" -v boots="$BOOTS" -v runtime="$RUNTIME" -v maxf="$MAX_FOREIGN" '
function median(s,    n, a, i, j, t) {
    n = split(s, a, " ")
    if (n == 0) return 0
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$1 == "dev" { iocmds[$2] = $3; raised[$2] = $4; next }
$1 == "msgs" { msgs[$2] = $3; virq[$2] = $4; barr[$2] = $5; barw[$2] = $6; next }
$1 == "host" { host[++nh] = $0; hcpu_s[$2 SUBSEP $3] = $5; hcpu_q[$2 SUBSEP $3] = $6; foreign[$2 SUBSEP $3] = $7; next }
{
    k = $1 SUBSEP $2 SUBSEP $3
    val[k] = ($3 ~ /^128k/) ? $5 * 1024 / 1e6 : $4
    p50[k] = $6; irq[k] = $4 > 0 ? $7 / ($4 * runtime) : 0
    if (!($3 in seen)) { seen[$3] = 1; jobs[++nj] = $3 }
    ios[$1 SUBSEP $2] += $4 * runtime
}
END {
    # A pair is boot b of both devices (they ran one after the other). Pairs
    # where another process took more than maxf % of a core during either
    # boot are left out of the rows; if every pair is, all are used.
    nclean = 0
    for (b = 1; b <= boots; b++) {
        clean[b] = (("vfio-user" SUBSEP b) in foreign) && (("qemu-nvme" SUBSEP b) in foreign) && foreign["vfio-user" SUBSEP b] <= maxf && foreign["qemu-nvme" SUBSEP b] <= maxf
        nclean += clean[b]
    }
    if (nclean == 0) for (b = 1; b <= boots; b++) { clean[b] = 1; nclean++ }
    for (i = 1; i <= nj; i++) {
        j = jobs[i]
        for (b = 1; b <= boots; b++) {
            v = "vfio-user" SUBSEP b SUBSEP j; q = "qemu-nvme" SUBSEP b SUBSEP j
            if (!clean[b] || !(v in val) || !(q in val)) continue
            rv[j] = rv[j] " " val[v]; rq[j] = rq[j] " " val[q]
            if (val[q] > 0) rr[j] = rr[j] " " val[v] / val[q]
            pv[j] = pv[j] " " p50[v]; pq[j] = pq[j] " " p50[q]
            iv[j] = iv[j] " " irq[v]; iq[j] = iq[j] " " irq[q]
        }
    }
    for (b in msgs) {
        n = ios["vfio-user" SUBSEP b]; if (n <= 0) continue
        mpi = mpi " " msgs[b] / n; ipi = ipi " " virq[b] / n
        rpi = rpi " " barr[b] / n; wpi = wpi " " barw[b] / n
        if (iocmds[b] > 0) { mpc = mpc " " msgs[b] / iocmds[b]; wpc = wpc " " barw[b] / iocmds[b]; dpc = dpc " " virq[b] / iocmds[b]; rpc = rpc " " raised[b] / iocmds[b] }
    }
    for (b = 1; b <= boots; b++) {
        n = ios["vfio-user" SUBSEP b]; m = ios["qemu-nvme" SUBSEP b]
        if (n > 0 && (("vfio-user" SUBSEP b) in hcpu_s)) {
            spi = spi " " 1e6 * hcpu_s["vfio-user" SUBSEP b] / n; vqpi = vqpi " " 1e6 * hcpu_q["vfio-user" SUBSEP b] / n
        }
        if (m > 0 && (("qemu-nvme" SUBSEP b) in hcpu_q)) qqpi = qqpi " " 1e6 * hcpu_q["qemu-nvme" SUBSEP b] / m
    }
    if (json) printf "{\"boots\":%d,\"runtime_s\":%d,\"clean_pairs\":%d,\"max_foreign_pct\":%g,\"rows\":[", boots, runtime, nclean, maxf
    else printf "%-18s %12s %12s %8s   %10s %10s  (medians of %d of %d boot pair(s), %d s per job)\n", "job", "vfio-user", "qemu-nvme", "ratio", "p50 us v/q", "irq/IO v/q", nclean, boots, runtime
    for (i = 1; i <= nj; i++) {
        j = jobs[i]
        unit = (j ~ /^128k/) ? "MB/s" : "IOPS"
        a = median(rv[j]); c = median(rq[j]); r = median(rr[j])
        if (json) printf "%s{\"job\":\"%s\",\"unit\":\"%s\",\"vfio_user\":%.1f,\"qemu_nvme\":%.1f,\"ratio\":%.3f,\"clat_p50_us_vfio_user\":%.1f,\"clat_p50_us_qemu_nvme\":%.1f,\"irq_per_io_vfio_user\":%.3f,\"irq_per_io_qemu_nvme\":%.3f}", (i > 1 ? "," : ""), j, unit, a, c, r, median(pv[j]), median(pq[j]), median(iv[j]), median(iq[j])
        else printf "%-18s %7.1f %-4s %7.1f %-4s %7.2fx   %5.0f/%-5.0f %4.2f/%-4.2f\n", j, a, unit, c, unit, r, median(pv[j]), median(pq[j]), median(iv[j]), median(iq[j])
    }
    if (json) {
        printf "],\"vfio_user_per_io\":{\"messages\":%.3f,\"bar_writes\":%.3f,\"bar_reads\":%.3f,\"irqs_delivered\":%.3f,\"server_cpu_us\":%.1f,\"qemu_cpu_us\":%.1f,\"per_io_cmd\":{\"messages\":%.3f,\"bar_writes\":%.3f,\"irqs_delivered\":%.3f,\"irqs_raised\":%.3f}},\"qemu_nvme_per_io\":{\"qemu_cpu_us\":%.1f},\"host\":[", median(mpi), median(wpi), median(rpi), median(ipi), median(spi), median(vqpi), median(mpc), median(wpc), median(dpc), median(rpc), median(qqpi)
        for (i = 1; i <= nh; i++) {
            split(host[i], h, " ")
            printf "%s{\"device\":\"%s\",\"boot\":%d,\"wall_s\":%.1f,\"server_cpu_s\":%.2f,\"qemu_cpu_s\":%.2f,\"foreign_cpu_pct\":%.1f,\"load1_before\":%.2f,\"load1_after\":%.2f}", (i > 1 ? "," : ""), h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]
        }
        printf "]}\n"
    } else {
        printf "vfio-user per I/O (whole boot, all jobs): %.2f messages, %.2f trapped BAR writes, %.2f BAR reads, %.2f interrupts delivered\n", median(mpi), median(wpi), median(rpi), median(ipi)
        printf "vfio-user per device I/O command (io_cmds, whole boot): %.2f messages, %.2f BAR writes, %.2f eventfd signals sent, %.2f interrupts raised by the device\n", median(mpc), median(wpc), median(dpc), median(rpc)
        printf "host CPU per I/O (whole boot): vfio-user: server %.1f us + QEMU %.1f us; qemu-nvme: QEMU %.1f us\n", median(spi), median(vqpi), median(qqpi)
        printf "per boot: %-9s %4s %7s %9s %9s %10s %s\n", "device", "boot", "wall s", "server s", "QEMU s", "foreign %", "load1 before->after"
        for (i = 1; i <= nh; i++) {
            split(host[i], h, " ")
            printf "per boot: %-9s %4d %7.1f %9.2f %9.2f %10.1f %s -> %s\n", h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]
        }
        printf "(ratio: median over the pairs of vfio-user / qemu-nvme, the two boots of a pair run back to back; pairs with foreign > %g %% are left out unless all are. foreign %%: host CPU used outside the boot, in %% of one core)\n", maxf
    }
}' "$W/results"
