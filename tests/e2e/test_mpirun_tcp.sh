#!/usr/bin/env bash
# Multi-node jobs talk over TCP: training with `--mca btl tcp,self` and
# private arenas (comm.shared_memory=false: no MPI-3 shared window either)
# gives the same model as the default transports with private arenas, so
# nothing silently relies on shared memory.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
run_np 2 train "$cfg" run.dir="$TMP/default" train.epochs=1 comm.shared_memory=false >/dev/null
OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=lo \
    run_np 2 train "$cfg" run.dir="$TMP/tcp" train.epochs=1 comm.shared_memory=false >/dev/null
want=$(params_hash "$TMP/default/model.h5")
got=$(params_hash "$TMP/tcp/model.h5")
[ "$got" = "$want" ] || fail "btl tcp,self: params $got != default transports $want"
ok "TCP-only transport gives the identical model ($got)"
