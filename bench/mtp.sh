#!/usr/bin/env bash
# MTP speculative decoding benchmarks (docs/mtp.md): the tiny oracle pair, then the 12B shape with a
# random-weight drafter (adaptive MTP must stay within 3% of plain decoding), optionally controlled
# acceptance on the 12B shape.
#
#   bench/mtp.sh tiny                 tiny oracle target + echo drafter and random drafter
#   bench/mtp.sh 12b [-n 64] [-t 2]   12B-shape Q4_0 target (~7 GB) + 12B-shape Q8_0 drafter
#   bench/mtp.sh 12b-accept           same files, --draft-accept 0,0.5,0.8,1
#   BENCH_DIR=/tmp/unigemma-bench KEEP=1 bench/mtp.sh 12b     (KEEP=1: keep the synthetic files)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-tiny}"
shift || true
n=64 t=2 r=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    -t) t="$2"; shift 2 ;;
    -r) r="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=build/release/unigemma
[[ -x "$bin" ]] || { cmake --preset release >/dev/null && cmake --build --preset release --target unigemma; }
oracle="${UG_ORACLE_DIR:-../shared/oracle}"
dir="${BENCH_DIR:-/tmp/unigemma-bench}"

case "$what" in
  tiny)
    target="$oracle/models/tiny-a/gemma4-tiny-a-f32.gguf"
    for d in gemma4-tiny-a-assistant-echo-f32 gemma4-tiny-a-assistant-f32; do
      "$bin" bench -m "$target" --draft "$oracle/mtp/models/$d.gguf" -n 256 -t "$t" -r 3
      echo
    done
    "$bin" bench -m "$target" --draft "$oracle/mtp/models/gemma4-tiny-a-assistant-f32.gguf" \
      -n 256 -t "$t" -r 3 --draft-accept 0,0.5,0.8,1
    ;;
  12b | 12b-accept)
    mkdir -p "$dir"
    df -h "$dir" >&2
    target="$dir/gemma4-12b-synth-q4_0.gguf"
    drafter="$dir/gemma4-12b-synth-assistant-q8_0.gguf"
    [[ -f "$target" ]] || "$bin" synth --shape 12b --type q4_0 -o "$target" >&2
    [[ -f "$drafter" ]] || "$bin" synth --shape 12b --drafter --type q8_0 -o "$drafter" >&2
    if [[ "$what" == 12b ]]; then
      "$bin" bench -m "$target" --draft "$drafter" -n "$n" -t "$t" -r "$r"
    else
      "$bin" bench -m "$target" --draft "$drafter" -n "$n" -t "$t" -r "$r" --draft-accept 0,0.5,0.8,1
    fi
    [[ "${KEEP:-0}" == 1 ]] || rm -f "$target" "$drafter"
    ;;
  *) echo "usage: bench/mtp.sh tiny|12b|12b-accept [-n N] [-t T] [-r R]" >&2; exit 2 ;;
esac
