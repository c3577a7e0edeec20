#!/usr/bin/env bash
# Benchmarks unigemma on synthetic 12B-shape models (generated once with `unigemma synth`), and, when
# LLAMA_BENCH points to a llama-bench binary, llama.cpp on the same files in the same session, then
# prints a side-by-side table with ratios.
#
#   bench/run.sh [TYPES] [-p 512] [-n 128] [-t 2] [-r 3]      TYPES default: "q4_0 q8_0"
#   BENCH_DIR=/tmp/unigemma-bench LLAMA_BENCH=/path/to/llama-bench bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
types="q4_0 q8_0"
if [[ $# -gt 0 && "$1" != -* ]]; then types="$1"; shift; fi
p=512 n=128 t=2 r=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    -p) p="$2"; shift 2 ;;
    -n) n="$2"; shift 2 ;;
    -t) t="$2"; shift 2 ;;
    -r) r="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=build/release/unigemma
[[ -x "$bin" ]] || { cmake --preset release >/dev/null && cmake --build --preset release --target unigemma; }
dir="${BENCH_DIR:-/tmp/unigemma-bench}"
mkdir -p "$dir"

# value of a JSON field in the record with the given n_prompt/n_gen (no jq dependency)
field() { /usr/bin/python3 -c "
import json,sys
recs=json.load(open(sys.argv[1]))
for r in recs:
  if r['n_prompt']==int(sys.argv[2]) and r['n_gen']==int(sys.argv[3]): print('%.3f' % r[sys.argv[4]])" "$@"; }

printf "| model | test | unigemma t/s | llama.cpp t/s | ratio |\n|---|---|---:|---:|---:|\n"
for type in $types; do
  model="$dir/gemma4-12b-synth-$type.gguf"
  [[ -f "$model" ]] || "$bin" synth --shape 12b --type "$type" -o "$model" >&2
  ours="$dir/unigemma-$type.json"
  "$bin" bench -m "$model" -p "$p" -n "$n" -t "$t" -r "$r" -o json >"$ours"
  theirs=""
  if [[ -n "${LLAMA_BENCH:-}" ]]; then
    theirs="$dir/llama-$type.json"
    "$LLAMA_BENCH" -m "$model" -p "$p" -n "$n" -t "$t" -r "$r" -o json >"$theirs"
  fi
  for test in "pp$p:$p:0" "tg$n:0:$n"; do
    IFS=: read -r name np ng <<<"$test"
    a=$(field "$ours" "$np" "$ng" avg_ts)
    b=""; ratio=""
    if [[ -n "$theirs" ]]; then
      b=$(field "$theirs" "$np" "$ng" avg_ts)
      ratio=$(/usr/bin/python3 -c "print('%.2fx' % ($a / $b))")
    fi
    printf "| %s | %s | %s | %s | %s |\n" "12B synth $type" "$name" "$a" "${b:--}" "${ratio:--}"
  done
done
