#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Build vfio-dext if needed, run `vfio-dext bench dext --json` RUNS times
# (default 3) and print the median of every numeric result as one JSON object.
#
# Usage: bench/run-dext-bench.sh [RUNS] [extra bench options...]
#   e.g. bench/run-dext-bench.sh 5 --iterations 50000
# Environment: BUILD (default build), VFIO_DEXT_BIN (default $BUILD/src/cli/vfio-dext).

set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${1:-3}
shift || true
BUILD=${BUILD:-build}
BIN=${VFIO_DEXT_BIN:-$BUILD/src/cli/vfio-dext}

if [[ -z "${VFIO_DEXT_BIN:-}" ]]; then
    if [[ ! -f "$BUILD/build.ninja" ]]; then
        meson setup "$BUILD" >&2
    fi
    ninja -C "$BUILD" >&2
fi

OUT=$(mktemp /tmp/vfio-dext-bench.XXXXXX)
trap 'rm -f "$OUT"' EXIT

for i in $(seq 1 "$RUNS"); do
    echo "run $i of $RUNS: $BIN bench dext --json $*" >&2
    "$BIN" bench dext --json "$@" >>"$OUT"
    tail -1 "$OUT" >&2
done

# Every top-level "key":number pair of every run -> median per key, in the
# order of the first run. The goals ("goal":{"key":"<= N"}) are strings, so
# they are not picked up as results; goal_met is recomputed for the medians.
awk -v runs="$RUNS" '
function median(key,    n, i, j, t, a) {
    n = split(vals[key], a, " ")
    for (i = 2; i <= n; i++) {
        t = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) { a[j + 1] = a[j] }
        a[j + 1] = t
    }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    line = $0
    g = line
    sub(/^.*"goal":[{]/, "", g)
    sub(/[}].*$/, "", g)
    goals = g
    sub(/,"goal":.*$/, "", line)
    while (match(line, /"[a-z0-9_]+":-?[0-9.]+/)) {
        pair = substr(line, RSTART, RLENGTH)
        line = substr(line, RSTART + RLENGTH)
        k = pair; sub(/":.*$/, "", k); sub(/^"/, "", k)
        v = pair; sub(/^.*":/, "", v)
        if (!(k in vals)) { order[++nk] = k; vals[k] = v } else { vals[k] = vals[k] " " v }
    }
}
END {
    printf "{\"runs\":%d", runs
    for (i = 1; i <= nk; i++) {
        med[order[i]] = median(order[i])
        m = med[order[i]]
        if (m == int(m)) { printf ",\"%s\":%d", order[i], m } else { printf ",\"%s\":%.3f", order[i], m }
    }
    printf ",\"goal\":{%s},\"goal_met\":{", goals
    n = split(goals, gl, ",")
    for (i = 1; i <= n; i++) {
        k = gl[i]; sub(/":.*$/, "", k); sub(/^"/, "", k)
        op = gl[i]; sub(/^[^:]*:"/, "", op); sub(/"$/, "", op)
        split(op, parts, " ")
        if (parts[1] == "<=") { met = (med[k] <= parts[2] + 0) } else { met = (med[k] >= parts[2] + 0) }
        printf "%s\"%s\":%s", (i > 1 ? "," : ""), k, (met ? "true" : "false")
    }
    printf "}}\n"
}' "$OUT"
