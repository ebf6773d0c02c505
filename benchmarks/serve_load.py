"""Load test of `vljepa serve` on loopback: concurrent clients mixing classify, ask and search, with dynamic
batching on and then off (one prediction per forward pass).

    python benchmarks/serve_load.py -m runs/demo/model/final --world runs/demo/world --clients 32 --seconds 60 \
        --out benchmarks/results/serve_load.json

For each mode a fresh server process is started (`vljepa serve --root WORLD --index ...`, a temporary index
of the world's held-out clips), each client sends requests back to back (a third each of classify with the
world's class names, ask with a held-out question and its options, search with a held-out caption; the
clips named by path, so each request decodes its clip on the server) until the time is up or
`--max-requests` have been sent, and the script reports requests/s, latency percentiles (p50/p95/p99, ms)
and errors (any non-200 answer or failed connection), then the batched/unbatched throughput ratio.
Timings need an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np


def workload(world: Path, clips: int) -> tuple[list[str], list[dict], list[str], list[str]]:
    """(clip paths relative to the world, VQA records, class names, captions) of the world's held-out split."""
    records = [json.loads(line) for line in (world / "test.jsonl").read_text().splitlines()]
    videos = list(dict.fromkeys(r["video"] for r in records))[:clips]
    chosen = set(videos)
    questions = [r for r in records if "question" in r and r["video"] in chosen]
    captions = [r["caption"] for r in records if "caption" in r and r["video"] in chosen]
    classes = [line for line in (world / "classes.txt").read_text().splitlines() if line.strip()]
    return videos, questions, classes, captions


def build_index(model: Path, world: Path, videos: list[str], folder: Path) -> Path:
    from vljepa.model import VLJepa
    from vljepa.tasks.index import VideoIndex

    VideoIndex.build(VLJepa.from_pretrained(model), [str(world / v) for v in videos], folder, progress=False)
    return folder


def start_server(model: Path, world: Path, index: Path, port: int, batching: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "vljepa.cli", "serve", "-m", str(model), "--index", str(index)]
    command += ["--root", str(world), "--port", str(port), "--max-queue", "256"]
    command += [] if batching else ["--no-batching"]
    return subprocess.Popen(command, env=os.environ | {"PYTHONUNBUFFERED": "1"})


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer within {seconds:g} s")


async def run_clients(url: str, clients: int, seconds: float, max_requests: int, work: tuple, seed: int) -> dict:
    videos, questions, classes, captions = work
    latencies: dict[str, list[float]] = {"classify": [], "ask": [], "search": []}
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + seconds

    def request(kind: str, rng: random.Random) -> tuple[str, str, dict]:
        if kind == "classify":
            return "POST", "/classify", {"data": {"path": rng.choice(videos), "labels": ",".join(classes)}}
        if kind == "ask":
            record = rng.choice(questions)
            data = {"path": record["video"], "question": record["question"], "options": record["options"]}
            return "POST", "/ask", {"data": data}
        return "GET", "/search", {"params": {"q": rng.choice(captions), "k": "10"}}

    async def client(number: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        rng = random.Random(seed * 1000 + number)
        kinds = ["classify", "ask", "search"]
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            kind = kinds[(number + sent) % 3]
            method, path, arguments = request(kind, rng)
            began = time.perf_counter()
            try:
                response = await http.request(method, path, **arguments)
                ok = response.status_code == 200
                reason = str(response.status_code)
            except httpx.HTTPError as error:
                ok, reason = False, type(error).__name__
            if ok:
                latencies[kind].append(time.perf_counter() - began)
            else:
                errors[reason] = errors.get(reason, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    elapsed = time.perf_counter() - began
    every = np.array([t for values in latencies.values() for t in values]) * 1000
    return {
        "seconds": elapsed,
        "requests": int(len(every)),
        "requests_per_s": len(every) / elapsed,
        "p50_ms": float(np.percentile(every, 50)) if len(every) else None,
        "p95_ms": float(np.percentile(every, 95)) if len(every) else None,
        "p99_ms": float(np.percentile(every, 99)) if len(every) else None,
        "by_kind": {kind: len(values) for kind, values in latencies.items()},
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True, help="A `vljepa world` folder.")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0, help="Per mode.")
    parser.add_argument("--max-requests", type=int, default=100_000, help="Per mode, at most.")
    parser.add_argument("--clips", type=int, default=200, help="Held-out clips used (and indexed).")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--modes", default="on,off", help="Batching modes to run, in order: on, off.")
    parser.add_argument("--out", type=Path, help="Write the results as JSON.")
    args = parser.parse_args()

    work = workload(args.world, args.clips)
    url = f"http://127.0.0.1:{args.port}"
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        index = build_index(args.model, args.world, work[0], Path(scratch) / "index")
        for mode in args.modes.split(","):
            server = start_server(args.model, args.world.resolve(), index, args.port, batching=mode == "on")
            try:
                wait_until_up(url, server)
                asyncio.run(run_clients(url, args.clients, 2.0, 10 * args.clients, work, seed=1))  # warm-up
                results[mode] = asyncio.run(
                    run_clients(url, args.clients, args.seconds, args.max_requests, work, seed=0)
                )
                results[mode]["batching"] = httpx.get(f"{url}/info").json()["batching"]
            finally:
                server.terminate()
                server.wait(timeout=60)
    print(f"{'batching':8s} {'requests':>8s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>6s}")
    for mode, row in results.items():
        print(
            f"{mode:8s} {row['requests']:8d} {row['requests_per_s']:7.2f} {row['p50_ms'] or 0:8.0f} "
            f"{row['p95_ms'] or 0:8.0f} {row['p99_ms'] or 0:8.0f} {row['errors']:6d}"
        )
    if {"on", "off"} <= results.keys() and results["off"]["requests_per_s"]:
        ratio = results["on"]["requests_per_s"] / results["off"]["requests_per_s"]
        results["throughput_ratio_on_off"] = ratio
        print(f"throughput with batching / without: {ratio:.2f}x")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, **results}, indent=2))


if __name__ == "__main__":
    main()
