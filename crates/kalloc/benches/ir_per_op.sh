#!/usr/bin/env bash
# Instructions per allocation and per free of each byte allocator on the
# bench's traces, counted by callgrind: deterministic, so unlike timings
# they do not move with the machine's load.
#
#   crates/kalloc/benches/ir_per_op.sh [trace] [contender...]
#
# trace: random (default), churn64 or burst64; contenders default to
# kalloc's TLSF, talc, rlsf and the harness floor. Each contender plays
# the trace in the bench's KALLOC_BENCH_IR mode, where every alloc and
# free goes through an out-of-line wrapper; the figure is the wrapper's inclusive Ir (the
# allocator's own instructions plus the call, which the floor row shows)
# divided by the number of calls. Needs valgrind (callgrind_annotate).
set -euo pipefail

trace=${1:-random}
shift || true
if [ $# -eq 0 ]; then
    set -- "kalloc TLSF" "talc" "rlsf" "harness floor (bump, no free)"
fi

root=$(cd "$(dirname "$0")/../../.." && pwd)
bin=$(cd "$root" && cargo bench -p rvos-kalloc --bench byte --no-run 2>&1 |
    sed -n 's/.*Executable benches\/byte.rs (\(.*\))/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "no bench binary built" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The inclusive Ir of every call to a function whose name contains $2,
# summed from the raw callgrind profile $1: each `calls=` line is followed
# by the call site and the callee's inclusive cost. Function names are
# compressed to `(id)` after their first appearance.
inclusive() {
    awk -v want="$2" '
        /^c?fn=\(/ {
            id = $1; sub(/^c?fn=/, "", id)
            if (NF > 1) { name = $0; sub(/^c?fn=\([0-9]+\) /, "", name); names[id] = name }
            if ($0 ~ /^cfn=/) callee = names[id]
            next
        }
        /^calls=/ { counting = index(callee, want) > 0; getline; if (counting) sum += $2; next }
        END { printf "%d\n", sum }
    ' "$1"
}

printf '| allocator (%s) | Ir/alloc | Ir/free | Ir/op | allocs | frees |\n' "$trace"
printf '|---|---:|---:|---:|---:|---:|\n'
for name in "$@"; do
    profile="$out/cg.out"
    calls=$(KALLOC_BENCH_IR="$name/$trace" valgrind --tool=callgrind \
        --callgrind-out-file="$profile" "$bin" --bench 2>/dev/null |
        grep '^ir_calls')
    allocs=$(echo "$calls" | sed 's/.* allocs \([0-9]*\) frees.*/\1/')
    frees=$(echo "$calls" | sed 's/.* frees \([0-9]*\)$/\1/')
    ir_alloc=$(inclusive "$profile" "instructions::ir_alloc")
    ir_free=$(inclusive "$profile" "instructions::ir_free")
    awk -v n="$name" -v a="${ir_alloc:-0}" -v f="${ir_free:-0}" \
        -v na="$allocs" -v nf="$frees" 'BEGIN {
        printf "| %s | %.1f | %.1f | %.1f | %d | %d |\n",
            n, a / na, (nf ? f / nf : 0), (a + f) / (na + nf), na, nf }'
done
