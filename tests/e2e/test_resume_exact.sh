#!/usr/bin/env bash
# Exact resume: runs stopped (checkpoint + exit 75) mid-epoch, at an epoch
# boundary, and several times, then resumed, end with parameters
# byte-identical to an uninterrupted run and the same metric lines
# (timing fields aside), for 1 and 2 ranks.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)   # 2 epochs of 430 steps

strip_timing() {     # metric lines without the wall-clock fields
    "$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    for k in ("samples_per_s", "elapsed_s", "time_s", "peak_rss_mb", "anon_rss_mb"):
        d.pop(k, None)
    print(json.dumps(d, sort_keys=True))' "$1"
}

expect_resume_me() {
    local rc=0
    "$@" >"$TMP/out.txt" 2>&1 || rc=$?
    [ "$rc" -eq 75 ] || { cat "$TMP/out.txt"; fail "expected exit 75, got $rc: $*"; }
}

for np in 1 2; do
    run_np $np train "$cfg" run.dir="$TMP/a$np" >/dev/null
    want=$(params_hash "$TMP/a$np/model.h5")

    # mid-epoch, then at the last step of epoch 1, then to the end
    expect_resume_me run_np $np train "$cfg" run.dir="$TMP/b$np" --stop-after-steps 250
    expect_resume_me run_np $np train "$cfg" run.dir="$TMP/b$np" --resume "$TMP/b$np" \
        --stop-after-steps 430
    run_np $np train "$cfg" run.dir="$TMP/b$np" --resume "$TMP/b$np" >/dev/null
    got=$(params_hash "$TMP/b$np/model.h5")
    [ "$got" = "$want" ] || fail "np=$np stopped twice: params $got != uninterrupted $want"
    diff <(strip_timing "$TMP/a$np/metrics.jsonl") <(strip_timing "$TMP/b$np/metrics.jsonl") ||
        fail "np=$np: metric lines differ after resume"

    # epoch boundary: a finished 1-epoch run extended to 2 epochs (run.resume=auto)
    run_np $np train "$cfg" run.dir="$TMP/c$np" train.epochs=1 >/dev/null
    run_np $np train "$cfg" run.dir="$TMP/c$np" run.resume=auto >/dev/null
    got=$(params_hash "$TMP/c$np/model.h5")
    [ "$got" = "$want" ] || fail "np=$np epoch-boundary resume: params $got != $want"
    ok "np=$np: resumed runs are byte-identical ($want)"
done

# Sharded optimizer (ZeRO-1) on private arenas, forced on.  Each rank keeps only its slice of the Adam
# moments up to date, so a resumed run matches only if the checkpoint
# gathered every slice.  With 2 ranks a reduced sum is the allreduced one,
# so the sharded run must also equal the replicated run bit for bit.
shard=(comm.shard_optimizer=true comm.shared_memory=false)
run_np 2 train "$cfg" run.dir="$TMP/r" comm.shard_optimizer=false >/dev/null
want=$(params_hash "$TMP/r/model.h5")
run_np 2 train "$cfg" run.dir="$TMP/s" "${shard[@]}" >/dev/null
got=$(params_hash "$TMP/s/model.h5")
[ "$got" = "$want" ] || fail "sharded optimizer: params $got != replicated $want"
expect_resume_me run_np 2 train "$cfg" run.dir="$TMP/t" "${shard[@]}" --stop-after-steps 250
run_np 2 train "$cfg" run.dir="$TMP/t" "${shard[@]}" --resume "$TMP/t" >/dev/null
got=$(params_hash "$TMP/t/model.h5")
[ "$got" = "$want" ] || fail "sharded optimizer, resumed: params $got != $want"
# the checkpoint holds whole moment arenas: resuming it unsharded is exact too
expect_resume_me run_np 2 train "$cfg" run.dir="$TMP/u" "${shard[@]}" --stop-after-steps 250
run_np 2 train "$cfg" run.dir="$TMP/u" comm.shard_optimizer=false comm.shared_memory=false \
    --resume "$TMP/u" >/dev/null
got=$(params_hash "$TMP/u/model.h5")
[ "$got" = "$want" ] || fail "sharded checkpoint resumed unsharded: params $got != $want"
ok "np=2 sharded optimizer: equal to replicated, resumed byte-identically ($want)"

# resumed_exactly NAME PATTERN ARGS...: an uninterrupted run with ARGS
# (its log matching PATTERN) and one stopped mid-epoch and resumed end with
# the same parameters; sets $want to their hash and leaves the run in
# $TMP/NAME.
resumed_exactly() {
    local name=$1 pattern=$2
    shift 2
    run_np 2 train "$cfg" run.dir="$TMP/$name" "$@" >"$TMP/$name.log"
    grep -q "$pattern" "$TMP/$name.log" || fail "$*: the log has no '$pattern'"
    want=$(params_hash "$TMP/$name/model.h5")
    expect_resume_me run_np 2 train "$cfg" run.dir="$TMP/$name-r" "$@" --stop-after-steps 250
    run_np 2 train "$cfg" run.dir="$TMP/$name-r" "$@" --resume "$TMP/$name-r" >/dev/null
    local got
    got=$(params_hash "$TMP/$name-r/model.h5")
    [ "$got" = "$want" ] || fail "$*, resumed: params $got != uninterrupted $want"
}

# The bfloat16 allreduce (comm.compression): resumed mid-epoch,
# byte-identical too
resumed_exactly bf16 "gradients: allreduce of bfloat16 gradients" comm.compression=bf16
ok "np=2 bfloat16 exchange: resumed byte-identically ($want)"
