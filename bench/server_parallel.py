#!/usr/bin/python3
"""Aggregate decode throughput of `unigemma serve` with --parallel N vs 1 (continuous batching).

For each N it starts the server, warms it up, then sends N concurrent requests that each generate
exactly --tokens tokens (ignore_eos), and reports aggregate decode tokens/s from the server's own
counters (tokens generated / wall seconds spent in batched decode steps) and from the client's
wall clock. Loopback only.

  bench/server_parallel.py -m MODEL [--parallel 1,4] [--tokens 64] [--threads 2]
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

def metrics(url):
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    def value(name):
        m = re.search(r"^%s (\S+)$" % name, text, re.M)
        return float(m.group(1)) if m else 0.0
    return value

def post(url, body):
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())

def run(binary, model, parallel, tokens, threads, ctx):
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([binary, "serve", "-m", model, "--port", "0", "--parallel", str(parallel),
                             "--threads", str(threads), "--ctx", str(ctx)],
                            stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if not found:
            err.seek(0)
            sys.exit("server did not start: " + err.read())
        url = found.group(1)
        body = lambda i: {"messages": [{"role": "user", "content": "Request %d: tell me a story." % i}],
                          "max_tokens": tokens, "temperature": 0, "ignore_eos": True}
        post(url, dict(body(0), max_tokens=4))  # warm-up
        before = metrics(url)
        results = [None] * parallel
        def worker(i):
            results[i] = post(url, body(i + 1))
        t0 = time.time()
        threads_ = [threading.Thread(target=worker, args=(i,)) for i in range(parallel)]
        for t in threads_: t.start()
        for t in threads_: t.join()
        wall = time.time() - t0
        after = metrics(url)
        gen = after("unigemma_generated_tokens_total") - before("unigemma_generated_tokens_total")
        dec = after("unigemma_decode_seconds_total") - before("unigemma_decode_seconds_total")
        got = sum(r["usage"]["completion_tokens"] for r in results)
        steps = after("unigemma_decode_steps_total") - before("unigemma_decode_steps_total")
        return {"parallel": parallel, "tokens": got, "wall_s": wall, "client_tps": got / wall,
                "decode_steps": steps, "server_tps": gen / max(dec, 1e-9)}
    finally:
        proc.terminate()
        proc.wait()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--bin", default="build/release/unigemma")
    ap.add_argument("--parallel", default="1,4")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=1024)
    a = ap.parse_args()
    rows = [run(a.bin, a.model, int(p), a.tokens, a.threads, a.ctx) for p in a.parallel.split(",")]
    base = rows[0]["client_tps"]
    sbase = rows[0]["server_tps"]
    print("| parallel | tokens | wall s | client t/s | vs first | decode-step t/s | vs first | steps |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %d | %.2f | %.1f | %.2fx | %.1f | %.2fx | %d |" % (
            r["parallel"], r["tokens"], r["wall_s"], r["client_tps"], r["client_tps"] / base,
            r["server_tps"], r["server_tps"] / sbase, r["decode_steps"]))

if __name__ == "__main__":
    sys.exit(main())
