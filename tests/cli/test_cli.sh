#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Integration tests of the `vfio-dext` command: a real daemon over a real
# socket, driven through the CLI exactly as a user would.
#
# Usage: test_cli.sh [VFIO_DEXT_BIN] [all|bench]
#   all    (default) help, usage errors, no-daemon errors, daemon lifecycle,
#          list-devices, status, probe over unix (identity and dart) and local
#   bench  a short `bench dext --json` run that checks every key is there
# Exit: 0 all passed, 1 something failed, 77 skipped (no binary).

set -uo pipefail

BIN=${1:-${VFIO_DEXT_BIN:-}}
MODE=${2:-all}
if [[ -z "$BIN" || ! -x "$BIN" ]]; then
    echo "SKIP: no vfio-dext binary (pass its path or set VFIO_DEXT_BIN)"
    exit 77
fi

TMP=$(mktemp -d /tmp/vfio-dext-cli-test.XXXXXX)
DAEMON_PID=
PASSED=0
FAILED=0

cleanup() {
    if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() {
    PASSED=$((PASSED + 1))
    echo "ok   $*"
}

not_ok() {
    FAILED=$((FAILED + 1))
    echo "FAIL $*"
    if [[ -s "$TMP/err" ]]; then
        sed 's/^/     stderr: /' "$TMP/err" | head -20
    fi
    if [[ -s "$TMP/out" ]]; then
        grep -v '^PASS' "$TMP/out" | sed 's/^/     stdout: /' | head -40
    fi
}

# run EXPECTED_EXIT DESCRIPTION -- COMMAND...: stdout in $TMP/out, stderr in $TMP/err
run() {
    local want=$1 what=$2 rc
    shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [[ $rc -eq $want ]]; then
        ok "$what (exit $rc)"
        return 0
    fi
    not_ok "$what: exit $rc, expected $want"
    return 1
}

# expect_in FILE TEXT DESCRIPTION
expect_in() {
    if grep -qF -- "$2" "$1"; then
        ok "$3"
    else
        not_ok "$3: '$2' not in $(basename "$1")"
    fi
}

# A usage or reachability error is one line on stderr and nothing on stdout.
expect_one_error_line() {
    local lines
    lines=$(wc -l <"$TMP/err")
    if [[ $lines -eq 1 && ! -s "$TMP/out" ]]; then
        ok "$1: one error line on stderr"
    else
        not_ok "$1: $lines stderr line(s), $(wc -c <"$TMP/out") stdout byte(s)"
    fi
}

# start_daemon DIR ARGS...: background daemon, wait for its socket and ready line
start_daemon() {
    local dir=$1
    shift
    "$BIN" dext --runtime-dir "$dir" "$@" >"$TMP/daemon.out" 2>"$TMP/daemon.err" &
    DAEMON_PID=$!
    for _ in $(seq 1 200); do
        if [[ -S "$dir/dext.sock" ]] && grep -q "serving" "$TMP/daemon.out"; then
            ok "daemon ready: $(head -1 "$TMP/daemon.out")"
            return 0
        fi
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    FAILED=$((FAILED + 1))
    echo "FAIL daemon did not become ready"
    sed 's/^/     daemon: /' "$TMP/daemon.out" "$TMP/daemon.err"
    return 1
}

# stop_daemon DIR: SIGTERM, expect exit 0 and the socket gone
stop_daemon() {
    local dir=$1 rc
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID"
    rc=$?
    DAEMON_PID=
    if [[ $rc -eq 0 ]]; then
        ok "daemon exits 0 on SIGTERM"
    else
        not_ok "daemon exit $rc on SIGTERM"
        sed 's/^/     daemon: /' "$TMP/daemon.err" | head -20
    fi
    if [[ -e "$dir/dext.sock" ]]; then
        not_ok "socket $dir/dext.sock left behind"
    else
        ok "socket removed on shutdown"
    fi
}

# probe_ok DESCRIPTION ARGS...: exit 0 and a final "N passed, 0 failed"
probe_ok() {
    local what=$1
    shift
    if run 0 "$what" -- "$BIN" probe "$@"; then
        if tail -1 "$TMP/out" | grep -Eq '^[0-9]+ passed, 0 failed$'; then
            ok "$what: $(tail -1 "$TMP/out")"
        else
            not_ok "$what: last line is '$(tail -1 "$TMP/out")'"
        fi
    fi
}

test_help() {
    run 0 "vfio-dext --help" -- "$BIN" --help
    expect_in "$TMP/out" "list-devices" "tool help lists the commands"
    for cmd in dext list-devices status probe bench serve run; do
        run 0 "vfio-dext $cmd --help" -- "$BIN" "$cmd" --help
        expect_in "$TMP/out" "Usage: vfio-dext $cmd" "$cmd --help shows its usage"
    done
}

test_usage_errors() {
    local -a cases=(
        ""
        "frobnicate"
        "dext"
        "dext --device sim:testdev --iommu bogus"
        "dext --device sim:testdev --dart-aperture 1000"
        "dext --device sim:testdev --dart-aperture 2T"
        "dext --device sim:testdev --dart-aperture 16Q"
        "dext --device sim:testdev --dart-max-mappings 0"
        "dext --device sim:testdev --allow-uid nobody"
        "dext --device sim:testdev extra"
        "list-devices --bogus"
        "list-devices --dext"
        "list-devices --dext tcp:1.2.3.4"
        "status extra"
        "probe"
        "probe 0000:00:01.0 --dext unix --local sim:testdev"
        "probe not-a-bdf --local sim:testdev"
        "probe 0000:00:01.0 --iommu dart"
        "bench"
        "bench other"
        "bench dext --iterations 0"
        "serve"
        "serve 0000:00:01.0"
        "serve 0000:00:01.0 --socket s --dext unix --local sim:nvme"
        "run --device sim:nvme --dext unix"
        "run --bdf 0000:00:01.0"
        "run --smp 0"
        "run --memory 10M"
        "run --memory 1000K"
        "run --timeout soon"
        "run extra"
        "run --guest none --cmd ls"
        "run --bogus"
    )
    local c
    for c in "${cases[@]}"; do
        # shellcheck disable=SC2086
        run 2 "usage error: vfio-dext $c" -- "$BIN" $c
        expect_one_error_line "vfio-dext $c"
    done
}

test_no_daemon() {
    local dir="$TMP/nobody-home"
    run 3 "status with no daemon" -- "$BIN" status --dext "unix:$dir"
    expect_in "$TMP/err" "no dext is running at $dir" "status names the dir"
    expect_in "$TMP/err" "vfio-dext dext --device sim:testdev" "status says how to start one"
    expect_one_error_line "status with no daemon"
    run 3 "list-devices with no daemon" -- "$BIN" list-devices --dext "unix:$dir"
    run 3 "probe with no daemon" -- "$BIN" probe 0000:00:01.0 --dext "unix:$dir"
}

# run's failures before and around QEMU: each one message, exit 1, nothing left.
test_run_errors() {
    run 1 "run with no test guest" -- "$BIN" run --guest "$TMP/no-guest"
    expect_in "$TMP/err" "scripts/setup-guest.sh" "run says how to make the guest"
    expect_one_error_line "run with no test guest"
    run 1 "run with a QEMU that does not exist" -- \
        "$BIN" run --guest none --qemu "$TMP/no-qemu" --device sim:nvme,size=16M
    expect_in "$TMP/err" "cannot run QEMU" "run says QEMU could not be run"
    expect_one_error_line "run with a QEMU that does not exist"
    printf '#!/bin/sh\nexit 0\n' >"$TMP/fake-qemu"
    chmod +x "$TMP/fake-qemu"
    run 0 "run with a QEMU that exits 0 (--guest none)" -- \
        "$BIN" run --guest none --qemu "$TMP/fake-qemu" --device sim:testdev
    expect_in "$TMP/out" "PASS: QEMU exited with 0" "run reports QEMU's status"
    printf '#!/bin/sh\nexec sleep 30\n' >"$TMP/slow-qemu"
    chmod +x "$TMP/slow-qemu"
    run 1 "run stops a QEMU at --timeout" -- \
        "$BIN" run --guest none --qemu "$TMP/slow-qemu" --timeout 1
    expect_in "$TMP/out" "FAIL: the --timeout expired" "run names the timeout"
    if ls /tmp/vfio-dext-run.* >/dev/null 2>&1 && pgrep -f "$TMP/slow-qemu" >/dev/null; then
        not_ok "run left its QEMU behind"
    else
        ok "run left no QEMU behind"
    fi
}

test_identity_daemon() {
    local dir="$TMP/rt" want
    want='{"devices":[{"bdf":"0000:00:01.0","vendor":"0x7e57","device":"0xde01","class":"0xff0000","claimed":false}]}'
    start_daemon "$dir" --device sim:testdev || return
    run 0 "list-devices --json" -- "$BIN" list-devices --dext "unix:$dir" --json
    if [[ "$(cat "$TMP/out")" == "$want" ]]; then
        ok "list-devices --json is exactly the documented JSON"
    else
        not_ok "list-devices --json: got $(cat "$TMP/out")"
    fi
    run 0 "list-devices (table)" -- "$BIN" list-devices --dext "unix:$dir"
    expect_in "$TMP/out" "0000:00:01.0  0x7e57 0xde01 0xff0000 no" "table row of the device"
    run 0 "status --json" -- "$BIN" status --dext "unix:$dir" --json
    expect_in "$TMP/out" '"devices"' "status JSON has devices"
    expect_in "$TMP/out" '0000:00:01.0' "status JSON names the device"
    run 0 "status (readable)" -- "$BIN" status --dext "unix:$dir"
    expect_in "$TMP/out" "dext: running at $dir" "status says it is running"
    expect_in "$TMP/out" "device 0000:00:01.0" "status shows the device"
    probe_ok "probe over unix (identity)" 0000:00:01.0 --dext "unix:$dir"
    run 0 "probe --json" -- "$BIN" probe 0000:00:01.0 --dext "unix:$dir" --json
    expect_in "$TMP/out" '"failed":0,' "probe JSON reports 0 failed"
    expect_in "$TMP/out" '"selector":2,"name":"Terminate","result":"skip"' \
        "probe JSON skips Terminate"
    run 1 "probe of a device the dext does not own" -- \
        "$BIN" probe 0000:00:09.0 --dext "unix:$dir"
    expect_in "$TMP/err" "has no device 0000:00:09.0" "probe names the missing device"
    run 1 "second daemon on the same runtime dir" -- \
        "$BIN" dext --device sim:testdev --runtime-dir "$dir"
    expect_in "$TMP/err" "already serving" "second daemon explains why"
    run 0 "list-devices after the probes" -- "$BIN" list-devices --dext "unix:$dir" --json
    expect_in "$TMP/out" '"claimed":false' "claims released when probes disconnect"
    stop_daemon "$dir"
    run 3 "status after the daemon stopped" -- "$BIN" status --dext "unix:$dir"
}

test_dart_daemon() {
    local dir="$TMP/rt-dart"
    start_daemon "$dir" --iommu dart --device sim:testdev \
        --device sim:testdev,bdf=0000:00:02.0 || return
    expect_in "$TMP/daemon.out" "serving 2 device(s)" "daemon serves two devices"
    run 0 "list-devices, two devices" -- "$BIN" list-devices --dext "unix:$dir"
    expect_in "$TMP/out" "0000:00:02.0" "second device listed"
    probe_ok "probe over unix (dart), device 1" 0000:00:01.0 --dext "unix:$dir"
    probe_ok "probe over unix (dart), device 2" 0000:00:02.0 --dext "unix:$dir"
    stop_daemon "$dir"
    # A configured aperture and mapping cap reach every device's IOMMU.
    start_daemon "$dir" --iommu dart --dart-aperture 64M --dart-max-mappings 100 \
        --device sim:testdev || return
    run 0 "status with a configured DART" -- "$BIN" status --dext "unix:$dir" --json
    expect_in "$TMP/out" '"iommu_aperture_bytes":67108864' "aperture size configured"
    expect_in "$TMP/out" '"iommu_max_mappings":100' "mapping cap configured"
    probe_ok "probe over unix (64M DART aperture)" 0000:00:01.0 --dext "unix:$dir"
    stop_daemon "$dir"
}

test_local() {
    probe_ok "probe --local (identity)" 0000:00:01.0 --local sim:testdev
    probe_ok "probe --local (dart)" --local sim:testdev --iommu dart
    probe_ok "probe --local sim:nvme" --local sim:nvme,size=64M
    run 1 "probe --local with a bad SPEC" -- "$BIN" probe --local sim:nosuchdevice
    expect_one_error_line "probe --local with a bad SPEC"
}

test_bench_smoke() {
    local key
    run 0 "bench dext --json (short)" -- \
        "$BIN" bench dext --json --iterations 200 --repetitions 1
    for key in local_rtt_ns unix_rtt_ns raw_socket_rtt_ns unix_vs_raw_ratio \
        dma_map_unmap_per_s_identity dma_map_unmap_per_s_dart irq_latency_ns_p50 \
        irq_rate_per_s repetitions goal; do
        expect_in "$TMP/out" "\"$key\":" "bench JSON has $key"
    done
    run 0 "bench nvme --json (short)" -- "$BIN" bench nvme --json --seconds 0.05
    for key in iops_4k_randread_qd1 iops_4k_randread_qd32 iops_4k_randwrite_qd32 \
        mbps_128k_seqread mbps_128k_seqwrite memcpy_mbps; do
        expect_in "$TMP/out" "\"$key\":" "bench nvme JSON has $key"
    done
    expect_in "$TMP/out" '"verified":true' "bench nvme verified every byte"
}

if [[ "$MODE" == bench ]]; then
    test_bench_smoke
else
    test_help
    test_usage_errors
    test_no_daemon
    test_run_errors
    test_identity_daemon
    test_dart_daemon
    test_local
fi

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
