#!/usr/bin/env bash
# Hostile configs (issue 18): a "billion laughs" of nested aliases, 100,000
# nested brackets, an endless file, a NUL byte, an override path of 20,000
# components.  Each ends on every rank with exit 1 and one message naming
# the file (or override) well inside a short limit: the reader refuses them
# after bounded work (src/config_tree.h), where it used to grow past 20 GB
# or work for half a minute.
source "$(dirname "$0")/lib.sh"
STEP_TIMEOUT=60

# expect_refused PATTERN CMD...: exit 1 exactly, the message, no run directory
expect_refused() {
    local rc=0
    expect_fail "$@"
    shift
    "$@" >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 1 ] || fail "exit $rc, expected 1: $*"
    [ ! -e "$TMP/run" ] || fail "a run directory was made: $*"
}

{
    echo 'l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'
    for i in $(seq 1 9); do
        printf 'l%d: &l%d [' "$i" "$i"
        for j in $(seq 1 10); do printf '*l%d, ' $((i - 1)); done
        echo "*l$((i - 1))]"
    done
} >"$TMP/laughs.yaml"
expect_refused "laughs.yaml:[0-9]+: the document \(aliases expanded\) holds more than 100000 nodes" \
    run_np 2 train "$TMP/laughs.yaml"
ok "billion laughs ($(wc -c <"$TMP/laughs.yaml") bytes) refused"

"$PY" -c "import sys; sys.stdout.write('[' * 100000 + ']' * 100000 + '\n')" >"$TMP/brackets.yaml"
expect_refused "brackets.yaml:1: nested deeper than 64 levels" run_np 2 train "$TMP/brackets.yaml"
ok "100,000 nested brackets refused"

expect_refused "/dev/zero: more than 1048576 bytes" run_np 2 train /dev/zero
ok "an endless config refused"

printf 'data: {train: x}\n\0model: {}\n' >"$TMP/nul.yaml"
expect_refused "nul.yaml: a NUL byte at offset 17" run_np 2 train "$TMP/nul.yaml"
ok "a NUL byte refused"

cfg=$(tiny_config)
path=$("$PY" -c "print('a.' * 20000 + 'b=1')")
expect_refused "a key path of more than 64 components" run_np 2 train "$cfg" "$path"
ok "an override path of 20,000 components refused"
