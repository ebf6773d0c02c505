"""Does `vljepa serve` give memory back after load? Its resident memory after 50 requests, after 400 uploads and
after a 60-s load test of concurrent clients, on loopback.

    python benchmarks/serve_memory.py -m runs/demo/model/final --world runs/demo/world \
        --out benchmarks/results/serve_memory.json

One server process (`vljepa serve --root WORLD --index ...`, batching on, as `serve_load.py` starts it) is
warmed with 50 requests (classify, ask and search by path), then sent 400 uploads (each a held-out clip's
bytes posted to /classify, 8 at a time; the server keeps the latest `max_uploads`), then a load test as
`serve_load.py` runs it. The server's RSS (`VmRSS` of /proc) is read after each phase, once the server is
idle, and sampled every half second throughout; the acceptance is the RSS after everything within 10% of
the RSS after the first 50 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
from serve_load import build_index, run_clients, start_server, wait_until_up, workload

from vljepa.eval.report import machine_description


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def upload(url: str, world: Path, videos: list[str], classes: list[str], count: int) -> int:
    """`count` uploads of the world's clips to /classify, 8 at a time; returns how many were refused."""
    refused = 0
    blobs = [(world / video).read_bytes() for video in videos]

    async def one(number: int, http: httpx.AsyncClient) -> None:
        nonlocal refused
        name = f"upload-{number}.mp4"
        files = {"video": (name, blobs[number % len(blobs)], "video/mp4")}
        response = await http.post("/classify", files=files, data={"labels": ",".join(classes)})
        refused += response.status_code != 200

    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        for start in range(0, count, 8):
            await asyncio.gather(*(one(n, http) for n in range(start, min(start + 8, count))))
    return refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True, help="A `vljepa world` folder.")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0, help="Of the load test.")
    parser.add_argument("--uploads", type=int, default=400)
    parser.add_argument("--clips", type=int, default=200, help="Held-out clips used (and indexed).")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--out", type=Path, help="Write the results as JSON.")
    args = parser.parse_args()

    world = args.world.resolve()
    work = workload(world, args.clips)
    url = f"http://127.0.0.1:{args.port}"
    samples: list[tuple[float, float]] = []
    phases: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        index = build_index(args.model, world, work[0], Path(scratch) / "index")
        server = start_server(args.model, world, index, args.port, batching=True)
        stop = threading.Event()
        began = time.monotonic()

        def sample() -> None:
            while not stop.wait(0.5):
                samples.append((time.monotonic() - began, rss_mb(server.pid)))

        try:
            wait_until_up(url, server)
            phases["up"] = rss_mb(server.pid)
            threading.Thread(target=sample, daemon=True).start()
            asyncio.run(run_clients(url, 8, 600, 50, work, seed=1))
            phases["after 50 requests"] = rss_mb(server.pid)
            refused = asyncio.run(upload(url, world, work[0], work[2], args.uploads))
            phases[f"after {args.uploads} uploads"] = rss_mb(server.pid)
            load = asyncio.run(run_clients(url, args.clients, args.seconds, 10**6, work, seed=0))
            phases[f"after a {args.seconds:g}-s load test"] = rss_mb(server.pid)
            time.sleep(5)
            phases["5 s later"] = rss_mb(server.pid)
        finally:
            stop.set()
            server.terminate()
            server.wait(timeout=60)
    baseline = phases["after 50 requests"]
    ratio = phases["5 s later"] / baseline
    for phase, value in phases.items():
        print(f"{phase:28s} {value:8.0f} MB")
    print(
        f"end / after 50 requests: {ratio:.3f} (uploads refused: {refused}; load: {load['requests']} requests, "
        f"{load['errors']} errors); peak {max(v for _, v in samples):.0f} MB"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results = {
            "machine": machine_description(),
            "config": {k: str(v) for k, v in vars(args).items()},
            "rss_mb": phases,
            "end_over_first_50": ratio,
            "peak_mb": max(v for _, v in samples),
            "uploads_refused": refused,
            "load": load,
            "samples": samples,
        }
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
