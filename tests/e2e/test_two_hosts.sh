#!/usr/bin/env bash
# A real two-host job without a second machine: two Linux network
# namespaces joined by a veth pair are the "hosts", and Open MPI launches
# its remote daemon through its ordinary rsh launcher, with an agent that
# enters the other namespace where a cluster would use ssh.  Each host has
# its own network stack and host name, so the ranks can only talk over TCP
# across the veth link, the path a multi-node job takes.  The trained model
# must be identical to a 2-rank run on one host.
# Needs root (ip netns); exits 77 (ctest: skipped) where namespaces cannot
# be made.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)

two_hosts_setup

run_np 2 train "$cfg" run.dir="$TMP/one-host" train.epochs=1 >/dev/null
run_two_hosts train "$cfg" run.dir="$TMP/two-hosts" train.epochs=1 comm.bucket_kb=1 \
    comm.overlap=true >"$TMP/two-hosts.log" 2>&1 || { cat "$TMP/two-hosts.log"; fail "two-host run"; }

grep -qx "$ip2" "$TMP/agent.log" || fail "the second host was not launched through the agent"
# the two-host run reduced 1 KiB buckets during backward (sharded, since the
# gradients span many buckets); the one-host run, after backward, replicated
grep -q "gradients: bucketed, overlapped reduction during backward, optimizer sharded" \
    "$TMP/two-hosts.log" || fail "two hosts: the reduction was not bucketed, overlapped and sharded"
want=$(params_hash "$TMP/one-host/model.h5")
got=$(params_hash "$TMP/two-hosts/model.h5")
[ "$got" = "$want" ] || fail "two hosts over TCP: params $got != one host $want"
ok "2 ranks on two network-namespace hosts over TCP give the identical model ($got)"
