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

id=$$
ns1=cvh1-$id ns2=cvh2-$id
ip1=10.77.0.1 ip2=10.77.0.2   # inside the namespaces this test makes, nowhere else
cleanup_netns() {
    ip netns del "$ns1" 2>/dev/null || true
    ip netns del "$ns2" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup_netns EXIT

if ! ip netns add "$ns1" 2>"$TMP/netns.err"; then
    echo "skipped: cannot create a network namespace: $(cat "$TMP/netns.err")"
    exit 77
fi
ip netns add "$ns2"
ip link add "cva$id" type veth peer name "cvb$id"
ip link set "cva$id" netns "$ns1"
ip link set "cvb$id" netns "$ns2"
ip -n "$ns1" addr add $ip1/24 dev "cva$id"
ip -n "$ns2" addr add $ip2/24 dev "cvb$id"
for ns in "$ns1" "$ns2"; do
    ip -n "$ns" link set lo up
done
ip -n "$ns1" link set "cva$id" up
ip -n "$ns2" link set "cvb$id" up

# The launcher agent: "agent HOST COMMAND..." runs COMMAND in HOST's
# namespace (with its own host name), as `ssh HOST COMMAND...` would.
cat >"$TMP/agent.sh" <<AGENT
#!/bin/sh
host=\$1
shift
case \$host in
$ip1) ns=$ns1 ;;
$ip2) ns=$ns2 ;;
*) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
echo "\$host" >>"$TMP/agent.log"
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$ns; \$*"
AGENT
chmod +x "$TMP/agent.sh"
printf '%s slots=1\n%s slots=1\n' $ip1 $ip2 >"$TMP/hosts"

run_np 2 train "$cfg" run.dir="$TMP/one-host" train.epochs=1 >/dev/null
ifs=10.77.0.0/24   # the veth subnet; each host has one of the two interfaces
timeout -k 10 "$STEP_TIMEOUT" ip netns exec "$ns1" unshare --uts sh -c \
    "hostname $ns1 && exec mpirun -np 2 --hostfile $TMP/hosts --mca plm_rsh_agent $TMP/agent.sh \
     --mca btl tcp,self --mca btl_tcp_if_include $ifs --mca oob_tcp_if_include $ifs \
     --bind-to none $CAVIAR train $cfg run.dir=$TMP/two-hosts train.epochs=1 comm.bucket_kb=1 comm.overlap=true" \
    >"$TMP/two-hosts.log" 2>&1 || { cat "$TMP/two-hosts.log"; fail "two-host run"; }

grep -qx "$ip2" "$TMP/agent.log" || fail "the second host was not launched through the agent"
# the two-host run reduced 1 KiB buckets during backward (sharded, since the
# gradients span many buckets); the one-host run, after backward, replicated
grep -q "gradients: bucketed, overlapped reduction during backward, optimizer sharded" \
    "$TMP/two-hosts.log" || fail "two hosts: the reduction was not bucketed, overlapped and sharded"
want=$(params_hash "$TMP/one-host/model.h5")
got=$(params_hash "$TMP/two-hosts/model.h5")
[ "$got" = "$want" ] || fail "two hosts over TCP: params $got != one host $want"
ok "2 ranks on two network-namespace hosts over TCP give the identical model ($got)"
