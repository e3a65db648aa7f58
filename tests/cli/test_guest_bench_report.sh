#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench/run-guest-bench.sh --report over a kept run (gbench-fixture: three
# boot pairs from this host, only pair 1 without foreign load): the rows are
# medians over the clean pairs, the ratio the median of the pairs' ratios,
# --max-foreign widens the set, bad arguments exit 2. Boots nothing.
set -uo pipefail

SRC=${1:?source root}
FIX=$(dirname "$0")/gbench-fixture
SCRIPT=$SRC/bench/run-guest-bench.sh
PASSED=0
FAILED=0

check() {
    if eval "$2"; then
        PASSED=$((PASSED + 1)); echo "ok   $1"
    else
        FAILED=$((FAILED + 1)); echo "FAIL $1"
    fi
}

out=$("$SCRIPT" --report "$FIX" 2>&1)
check "text report: 1 of 3 pairs clean" '[[ $out == *"medians of 1 of 3 boot pair(s)"* ]]'
check "text report: QD1 row is pair 1 (3343 vs 3643, 0.92x)" \
    '[[ $(grep "^4k-randread-qd1 " <<<"$out") =~ 3343\.0\ IOPS\ +3643\.0\ IOPS\ +0\.92x ]]'
check "text report: per-I/O messages from every boot (0.69)" '[[ $out == *"0.69 messages"* ]]'

json=$("$SCRIPT" --report "$FIX" --json --max-foreign 100 2>&1)
check "--json is one valid object" 'python3 -c "import json,sys; json.loads(sys.argv[1])" "$json"'
check "--max-foreign 100 takes all 3 pairs" '[[ $json == *"\"clean_pairs\":3,"* ]]'
# pair ratios at QD1: 3343/3643, 2968/1369, 1172/1961 -> median 0.918
check "ratio is the median of the pair ratios (0.918), not of the medians (1.513)" \
    '[[ $json == *"\"job\":\"4k-randread-qd1\",\"unit\":\"IOPS\",\"vfio_user\":2968.0,\"qemu_nvme\":1961.0,\"ratio\":0.918,"* ]]'

"$SCRIPT" --report "$FIX" --max-foreign lots >/dev/null 2>&1
check "--max-foreign lots: exit 2" '[[ $? -eq 2 ]]'
"$SCRIPT" --report /nonexistent >/dev/null 2>&1
check "--report of a missing run: exit 2" '[[ $? -eq 2 ]]'
"$SCRIPT" --boots 0 >/dev/null 2>&1
check "--boots 0: exit 2" '[[ $? -eq 2 ]]'

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
