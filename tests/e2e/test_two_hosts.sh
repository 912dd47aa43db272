#!/usr/bin/env bash
# A real two-host job without a second machine: two Linux network
# namespaces joined by a veth pair are the "hosts", and Open MPI launches
# its remote daemon through its ordinary rsh launcher, with an agent that
# enters the other namespace where a cluster would use ssh.  Each host has
# its own network stack and host name, so the ranks can only talk over TCP
# across the veth link, the path a multi-node job takes.  The trained model
# must be identical to a 2-rank run on one host exchanging by messages too
# (comm.shared_memory=false: with 2 ranks every exchange sums the same two
# numbers).  With two ranks per host, each host's ranks share their arenas
# and the hosts allreduce the slices (the hierarchical exchange): the
# replicas on both hosts must end identical (the trainer checks) and train
# as well as 4 ranks on one host.
# With 2 ranks on one host and 1 on the other, slices would differ between
# the hosts, so the ranks keep private arenas and exchange by messages.
# Needs root (ip netns); exits 77 (ctest: skipped) where namespaces cannot
# be made.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)

two_hosts_setup

run_np 2 train "$cfg" run.dir="$TMP/one-host" train.epochs=1 comm.shared_memory=false \
    comm.shard_optimizer=true >/dev/null
run_two_hosts train "$cfg" run.dir="$TMP/two-hosts" train.epochs=1 comm.shard_optimizer=true \
    >"$TMP/two-hosts.log" 2>&1 || { cat "$TMP/two-hosts.log"; fail "two-host run"; }

grep -qx "$ip2" "$TMP/agent.log" || fail "the second host was not launched through the agent"
# the two-host run exchanged the sharded optimizer's slices over TCP
grep -q "gradients: pairwise reduce-scatter after backward, optimizer sharded" \
    "$TMP/two-hosts.log" || fail "two hosts: the exchange was not the sharded one"
want=$(params_hash "$TMP/one-host/model.h5")
got=$(params_hash "$TMP/two-hosts/model.h5")
[ "$got" = "$want" ] || fail "two hosts over TCP: params $got != one host $want"
ok "2 ranks on two network-namespace hosts over TCP give the identical model ($got)"

# 2 x 2: the owners sum their peers' gradient copies from shared memory,
# then the hosts allreduce the slices
args=(train.epochs=1)
run_np 4 train "$cfg" run.dir="$TMP/one-host-4" "${args[@]}" >"$TMP/one-host-4.log"
PER_HOST=2 run_two_hosts train "$cfg" run.dir="$TMP/two-hosts-4" "${args[@]}" \
    >"$TMP/two-hosts-4.log" 2>&1 || { cat "$TMP/two-hosts-4.log"; fail "2 x 2 two-host run"; }
grep -q "node-shared arenas: .* 2 gradient copies .*, then allreduces the slice across hosts" \
    "$TMP/two-hosts-4.log" || { cat "$TMP/two-hosts-4.log"; fail "2 x 2: no hierarchical exchange"; }
grep -q "node-shared arenas: .* 4 gradient copies" "$TMP/one-host-4.log" ||
    fail "4 ranks on one host did not share arenas"
one=$(dev_accuracy "$TMP/one-host-4") two=$(dev_accuracy "$TMP/two-hosts-4")
"$PY" -c "import sys; sys.exit(abs($one - $two) > 0.01)" ||
    fail "2 x 2 over TCP: dev accuracy $two vs $one on one host"
ok "2 ranks on each of two hosts: arenas shared per host, slices allreduced over TCP, replicas identical, dev accuracy $two (one host: $one)"

RANKS=3 run_two_hosts train "$cfg" run.dir="$TMP/uneven" train.epochs=1 >"$TMP/uneven.log" 2>&1 ||
    { cat "$TMP/uneven.log"; fail "2 + 1 ranks on two hosts"; }
grep -q "gradients: allreduce after backward" "$TMP/uneven.log" ||
    { cat "$TMP/uneven.log"; fail "2 + 1 ranks: expected private arenas"; }
ok "2 + 1 ranks on two hosts: private arenas, exchanged by messages, replicas identical"
