"""REST serving as `make serve` runs it: rows per second and latency for requests of 1, 100 and
the row limit's rows, on 127.0.0.1.

Needs a trained model (``make train``). Starts ``python -m pipeline serve`` on a free port with
the default limit and timeout, sends a bounded number of requests, then stops the server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.spark import workload
from pipeline.inference.serve import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT

MODEL = Path("models/finetune-minilm")
SIZES = {1: 30, 100: 10, DEFAULT_MAX_ROWS: 3}  # rows per request -> requests sent


def post(url: str, rows: list[dict]) -> tuple[int, float]:
    body = json.dumps({"dataframe_records": rows}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=DEFAULT_TIMEOUT + 30) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        status = err.code
    return status, time.perf_counter() - start


def main() -> None:
    if not (MODEL / "stance.json").is_file():
        print(f"skipped: no trained model at {MODEL} (run `make train`)")
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--model", str(MODEL), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        rows = workload(DEFAULT_MAX_ROWS + 1).to_dict("records")
        post(url, rows[:8])  # warm-up
        print(
            f"model {MODEL}, limit {DEFAULT_MAX_ROWS} rows, timeout {DEFAULT_TIMEOUT} s, "
            f"{os.cpu_count()} CPU cores, one server process"
        )
        print(f"{'rows/request':>12} {'requests':>8} {'p50 s':>8} {'p95 s':>8} {'rows/s':>8}")
        for size, n in SIZES.items():
            times = []
            for _ in range(n):
                status, seconds = post(url, rows[:size])
                assert status == 200, f"HTTP {status} for {size} rows"
                times.append(seconds)
            t = np.array(times)
            print(
                f"{size:>12} {n:>8} {np.percentile(t, 50):>8.3f} {np.percentile(t, 95):>8.3f} "
                f"{size * n / t.sum():>8.0f}"
            )
        status, seconds = post(url, rows[: DEFAULT_MAX_ROWS + 1])
        print(f"{DEFAULT_MAX_ROWS + 1} rows: HTTP {status} in {seconds:.3f} s (over the limit)")
    finally:
        server.terminate()
        server.wait(timeout=30)
