#!/usr/bin/env bash
# tests/fuzz/run.sh [TARGET...] - build the libFuzzer targets (clang,
# ASan + UBSan, in build-fuzz) and fuzz each one for a bounded time.
#   CV_FUZZ_SECONDS  seconds per target (default 60)
#   CV_FUZZ_RSS_MB   memory limit: more is a finding (default 2048)
#   CV_FUZZ_TIMEOUT  seconds one input may take: more is a finding (default 10)
#   CV_FUZZ_BUILD    build directory (default ROOT/build-fuzz)
# Targets: config csv idx dataset ckpt (default: all).  The corpus grows in
# BUILD/corpus/TARGET between runs; a crash, leak, timeout or OOM leaves its
# input in BUILD/artifacts/TARGET/ and makes the script fail: copy it into
# tests/fuzz/regressions/TARGET/ (ctest replays it), then fix the reader.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${CV_FUZZ_BUILD:-$ROOT/build-fuzz}
SECS=${CV_FUZZ_SECONDS:-60}
RSS=${CV_FUZZ_RSS_MB:-2048}
TIMEOUT=${CV_FUZZ_TIMEOUT:-10}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(config csv idx dataset ckpt)

CC=clang cmake -S "$ROOT" -B "$B" -DCV_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" -j"${CV_JOBS:-2}" --target "${TARGETS[@]/#/fuzz_}"

export OMP_NUM_THREADS=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# as in tests/fuzz/CMakeLists.txt: a huge malloc returns NULL (libhdf5 asks
# for what a corrupt file claims), and libhdf5's own lost memory is suppressed
export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1
export LSAN_OPTIONS=suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=0
failed=()
for t in "${TARGETS[@]}"; do
    corpus=$B/corpus/$t art=$B/artifacts/$t log=$B/logs/$t.log
    mkdir -p "$corpus" "$art" "$B/logs"
    inputs=("$ROOT/tests/fuzz/seeds/$t")
    [ -d "$ROOT/tests/fuzz/regressions/$t" ] && inputs+=("$ROOT/tests/fuzz/regressions/$t")
    dict=()
    [ -f "$ROOT/tests/fuzz/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$t.dict")
    echo "== fuzz $t: ${SECS} s (log $log)"
    rc=0
    nice "$B/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -rss_limit_mb="$RSS" -timeout="$TIMEOUT" \
        -artifact_prefix="$art/" -print_final_stats=1 "${dict[@]}" "$corpus" "${inputs[@]}" \
        >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "   $t: exit $rc, ${runs:-?} executions, corpus $(ls "$corpus" | wc -l) inputs"
    if [ "$rc" -ne 0 ]; then
        grep -m1 -E "^==[0-9]+==ERROR|^SUMMARY|runtime error|fuzz invariant|Test unit written" "$log" || true
        ls -t "$art" | head -3 | sed "s|^|   finding: $art/|"
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]} (inputs in $B/artifacts; keep each in tests/fuzz/regressions/TARGET/)"
    exit 1
fi
echo "fuzz: no findings"
