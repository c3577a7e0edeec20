#!/usr/bin/env bash
# Benchmarks unigemma on synthetic 12B-shape models (generated once with `unigemma synth`), and, when
# LLAMA_BENCH points to a llama-bench binary, llama.cpp on the same files in the same session, then
# prints a side-by-side table with ratios and, for decode, the share of the bandwidth ceiling.
#
#   bench/run.sh [TYPES] [-p 512] [-n 128] [-t 2] [-r 3] [--layers "0 6"]
#   BENCH_DIR=/tmp/unigemma-bench LLAMA_BENCH=/path/to/llama-bench bench/run.sh
#
# TYPES default "q4_0 q8_0". --layers lists the models per type: 0 is the whole 48-layer shape, N a
# slice of its first N layers (`synth --layers N`; 6 = one 5 sliding : 1 full group, which keeps
# the tied 262k-row LM head, so it weighs the head against a few layers).
#
# Ceiling: a decoded token streams every weight once (the tied embedding is the LM head), so the
# fastest decode the memory allows is (streaming-read bandwidth on -t threads, measured here by
# kernels_bench --stream-only) / (bytes of the file). "% ceil" is tg t/s over that.
set -euo pipefail
cd "$(dirname "$0")/.."
types="q4_0 q8_0"
if [[ $# -gt 0 && "$1" != -* ]]; then types="$1"; shift; fi
p=512 n=128 t=2 r=3 layers="0 6"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -p) p="$2"; shift 2 ;;
    -n) n="$2"; shift 2 ;;
    -t) t="$2"; shift 2 ;;
    -r) r="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=build/release/unigemma
kbench=build/release/kernels_bench
if [[ ! -x "$bin" || ! -x "$kbench" ]]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target unigemma kernels_bench
fi
dir="${BENCH_DIR:-/tmp/unigemma-bench}"
mkdir -p "$dir"

# value of a JSON field in the record with the given n_prompt/n_gen (no jq dependency)
field() { /usr/bin/python3 -c "
import json,sys
recs=json.load(open(sys.argv[1]))
for r in recs:
  if r['n_prompt']==int(sys.argv[2]) and r['n_gen']==int(sys.argv[3]): print('%.3f' % r[sys.argv[4]])" "$@"; }
calc() { /usr/bin/python3 -c "print($1)"; }

gbs=$("$kbench" --stream-only --threads "$t" | sed -n 's/.*stream read .*threads=[0-9]*  *\([0-9.]*\) GB\/s.*/\1/p')
echo "streaming read, $t threads: $gbs GB/s (kernels_bench --stream-only)"
echo
printf "| model | size | test | unigemma t/s | llama.cpp t/s | ratio | unigemma %% ceil | llama.cpp %% ceil |\n"
printf "|---|---:|---|---:|---:|---:|---:|---:|\n"
for type in $types; do
  for l in $layers; do
    if [[ "$l" == 0 ]]; then
      name="12B synth $type"
      model="$dir/gemma4-12b-synth-$type.gguf"
      [[ -f "$model" ]] || "$bin" synth --shape 12b --type "$type" -o "$model" >&2
    else
      name="12B synth $type, first $l layers"
      model="$dir/gemma4-12b-synth-$type-l$l.gguf"
      [[ -f "$model" ]] || "$bin" synth --shape 12b --type "$type" --layers "$l" -o "$model" >&2
    fi
    bytes=$(stat -c %s "$model")
    ceiling=$(calc "$gbs * 1e9 / $bytes")
    tag=$(basename "$model" .gguf)
    ours="$dir/unigemma-$tag.json"
    "$bin" bench -m "$model" -p "$p" -n "$n" -t "$t" -r "$r" -o json >"$ours"
    theirs=""
    if [[ -n "${LLAMA_BENCH:-}" ]]; then
      theirs="$dir/llama-$tag.json"
      "$LLAMA_BENCH" -m "$model" -p "$p" -n "$n" -t "$t" -r "$r" -o json >"$theirs"
    fi
    for test in "pp$p:$p:0" "tg$n:0:$n"; do
      IFS=: read -r tname np ng <<<"$test"
      a=$(field "$ours" "$np" "$ng" avg_ts)
      b="" ratio="" pa="" pb=""
      if [[ -n "$theirs" ]]; then
        b=$(field "$theirs" "$np" "$ng" avg_ts)
        ratio=$(calc "'%.2fx' % ($a / $b)")
      fi
      if [[ "$ng" != 0 ]]; then
        pa=$(calc "'%.0f%%' % (100 * $a / $ceiling)")
        [[ -n "$b" ]] && pb=$(calc "'%.0f%%' % (100 * $b / $ceiling)")
      fi
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$name" \
        "$(calc "'%.2f GB' % ($bytes / 1e9)")" "$tname" "$a" "${b:--}" "${ratio:--}" \
        "${pa:--}" "${pb:--}"
    done
  done
done
echo
echo "decode ceiling = $gbs GB/s / file size; files in $dir"
