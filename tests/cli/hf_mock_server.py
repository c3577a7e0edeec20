#!/usr/bin/python3
"""A local stand-in for the Hugging Face hub endpoints `unigemma pull` uses (tests only).

  GET /api/models/OWNER/NAME[?blobs=true]     {"siblings": [{"rfilename", "size", "lfs": {"sha256", "size"}}]}
  GET|HEAD /OWNER/NAME/resolve/main/FILE       the file, with Range support and X-Linked-Etag

Repos are folders ROOT/OWNER/NAME. Prints "PORT PID" on the first line of stdout once listening
on 127.0.0.1 (port 0 = any free port). Fault injection for tests:
  --truncate-once FILE   the first GET of FILE sends half of the body, then drops the connection
  --bad-sha FILE         the metadata of FILE carries a wrong sha256
  --log PATH             appends one line per request: "METHOD PATH RANGE"
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".gguf", ".safetensors")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Hub:
    def __init__(self, args):
        self.root = args.root
        self.truncate_once = set(args.truncate_once or [])
        self.bad_sha = set(args.bad_sha or [])
        self.log = args.log
        self.lock = threading.Lock()
        self.sha_cache = {}

    def sha(self, path, name):
        if name in self.bad_sha:
            return "0" * 64
        if path not in self.sha_cache:
            self.sha_cache[path] = sha256_of(path)
        return self.sha_cache[path]

    def record(self, line):
        if self.log:
            with self.lock, open(self.log, "a") as f:
                f.write(line + "\n")


def make_handler(hub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send_json(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def repo_dir(self, owner, name):
            d = os.path.join(hub.root, owner, name)
            return d if os.path.isdir(d) else None

        def do_HEAD(self):
            self.handle_request(head=True)

        def do_GET(self):
            self.handle_request(head=False)

        def handle_request(self, head):
            url = urllib.parse.urlparse(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
            hub.record("%s %s %s" % (self.command, url.path, self.headers.get("Range", "-")))
            if len(parts) == 4 and parts[:2] == ["api", "models"]:
                d = self.repo_dir(parts[2], parts[3])
                if not d:
                    return self.send_json(404, {"error": "Repository not found"})
                siblings = []
                for dirpath, _, files in os.walk(d):
                    for fn in sorted(files):
                        full = os.path.join(dirpath, fn)
                        rel = os.path.relpath(full, d)
                        entry = {"rfilename": rel, "size": os.path.getsize(full)}
                        if rel.endswith(LFS_SUFFIXES):
                            entry["lfs"] = {"sha256": hub.sha(full, rel), "size": os.path.getsize(full)}
                        siblings.append(entry)
                return self.send_json(200, {"id": parts[2] + "/" + parts[3], "siblings": siblings})
            if len(parts) >= 5 and parts[2:4] == ["resolve", "main"]:
                d = self.repo_dir(parts[0], parts[1])
                rel = "/".join(parts[4:])
                full = os.path.join(d, rel) if d else None
                if not full or ".." in parts or not os.path.isfile(full):
                    return self.send_json(404, {"error": "Entry not found"})
                size = os.path.getsize(full)
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", "bytes */%d" % size)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
                self.send_header("Content-Length", str(size - start))
                self.send_header("Accept-Ranges", "bytes")
                if rel.endswith(LFS_SUFFIXES):
                    self.send_header("X-Linked-Etag", '"%s"' % hub.sha(full, rel))
                    self.send_header("X-Linked-Size", str(size))
                self.end_headers()
                if head:
                    return
                with open(full, "rb") as f:
                    f.seek(start)
                    data = f.read()
                with hub.lock:
                    cut = rel in hub.truncate_once and start == 0
                    if cut:
                        hub.truncate_once.discard(rel)
                if cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)
                return
            self.send_json(404, {"error": "not found"})

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--truncate-once", action="append")
    ap.add_argument("--bad-sha", action="append")
    ap.add_argument("--log")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Hub(args)))
    server.daemon_threads = True
    print("%d %d" % (server.server_address[1], os.getpid()), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
