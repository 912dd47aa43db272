#!/usr/bin/env bash
# tests/check_format.sh - fail if a tracked C source or header under src/,
# include/ or tests/ is not formatted as .clang-format says, so the tree
# stays in one style and diffs show only real changes.  Lists the files that
# differ and prints the command that fixes them.  Needs clang-format (the
# test command installs Debian's clang-format 14; other versions may format
# some lines differently).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
    echo "check_format: $CLANG_FORMAT not found (apt-get install clang-format)" >&2
    exit 1
fi
version=$("$CLANG_FORMAT" --version)
if [[ ! $version =~ version\ 14\. ]]; then
    echo "check_format: warning: .clang-format is tuned for clang-format 14, this is: $version" >&2
fi
# A .clang-format this version cannot read would otherwise fail every file.
if ! "$CLANG_FORMAT" --dump-config src/cli/main.c >/dev/null; then
    echo "check_format: $CLANG_FORMAT cannot read .clang-format (see above)" >&2
    exit 1
fi

mapfile -t files < <(git ls-files -- 'src/*.c' 'src/*.h' 'include/*.c' 'include/*.h' \
    'tests/*.c' 'tests/*.h')
bad=()
for f in "${files[@]}"; do
    [[ -f $f ]] || continue # deleted in the work tree, not yet in the index
    if ! "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done

if ((${#bad[@]} > 0)); then
    echo "check_format: ${#bad[@]} of ${#files[@]} files are not formatted:" >&2
    printf '    %s\n' "${bad[@]}" >&2
    echo "fix: clang-format -i \$(git ls-files '*.c' '*.h')" >&2
    exit 1
fi
echo "check_format: ${#files[@]} files formatted"
