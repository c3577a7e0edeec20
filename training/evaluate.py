"""Held-out accuracy per task of an exported model, computed with the PyTorch implementation
(greedy, the same stop tokens and suppressed tokens as the engine).

  /usr/bin/python3 training/evaluate.py --hf runs/nano/hf --n 20 [--tasks shape,count] [--json OUT]

The held-out split (data.Generator(seed, "heldout")) never produces a training example.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import data  # noqa: E402
import gemma4_torch as g  # noqa: E402
import tokenizer as tk  # noqa: E402
import train  # noqa: E402


def evaluate(model, tok, tasks, n, seed=0, budget=70, log=print):
    gen = data.Generator(seed, "heldout")
    results = {}
    for task in tasks:
        ok = 0
        for i in range(n):
            ex = gen.example(i, task)
            enc = train.encode_example(tok, ex, budget)
            out = train.greedy(model, tok, enc, max_new=48)
            text = tok.decode(out)
            ok += data.check_answer(ex, text)
        results[task] = ok / n
        log(f"{task:14s} {100 * ok / n:5.1f}%  ({ok}/{n})")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hf", required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--tasks", default=",".join(data.ALL_TASKS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=70)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = g.load_hf_model(args.hf)
    tok = tk.Tokenizer.load_hf(args.hf)
    t0 = time.time()
    res = evaluate(model, tok, args.tasks.split(","), args.n, args.seed, args.budget)
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
