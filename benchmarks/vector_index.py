"""The video index's approximate search, and its end-to-end agreement with `vljepa eval`'s retrieval.

`ann`: N random 256-d unit vectors in the HNSW graph the index switches to past its flat limit
(`vljepa.tasks.index.hnsw_index`, the library's settings unless overridden): build time, single-query
latency p50/p99 (one query at a time, as a search request arrives) and recall@10 against exact search
(`IndexFlatIP`), with the distance computations per query (a cost figure that CPU contention does not
change). Queries are random unit vectors too (the hard case: in 256 dimensions a random query's
neighbours are barely nearer than the rest), or with `--near` a database vector plus noise (cosine about
0.7 to it, like a caption and its clip). `--sweep` measures recall and distance computations for several
HNSW settings and an IVF index (IndexIVFFlat, k-means-trained lists) at the same size, which is how the
library's settings were chosen.

    python benchmarks/vector_index.py ann --n 1000000 --out benchmarks/results/vector_index_1m.json
    python benchmarks/vector_index.py ann --n 100000 --sweep --out benchmarks/results/vector_index_sweep_100k.json

`e2e`: scores a manifest's captions through an index of its clips (text->video R@1/5/10, a hit when the
caption's own clip is among the first k), beside `vljepa.eval.suite`'s exact-clip text->video retrieval
on the same manifest: once through an index built from the videos with a trained model
(`VideoIndex.build`, as `vljepa index build` does), and once through an index of the suite's own
predictions (from the feature cache's float16 tokens), which must give the suite's figures exactly.

    python benchmarks/vector_index.py e2e --model runs/demo/model/final --manifest runs/demo/world/test.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from vljepa.eval.report import machine_description
from vljepa.tasks.index import IndexSettings, hnsw_index


def unit_vectors(count: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((count, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def near_queries(database: np.ndarray, count: int, rng: np.random.Generator, noise: float = 1.0) -> np.ndarray:
    """Database vectors plus Gaussian noise of total norm `noise`, renormalised (cosine ~ 1/sqrt(1+noise^2))."""
    chosen = database[rng.choice(len(database), count, replace=False)]
    noisy = chosen + noise * unit_vectors(count, database.shape[1], rng)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact)]))


def measure(index: faiss.Index, queries: np.ndarray, exact: np.ndarray, stats, timed: bool) -> dict:
    """Recall@k of a batch search and distance computations per query; with `timed`, single-query latencies."""
    stats.reset()
    _, found = index.search(queries, exact.shape[1])
    result = {"recall@10": recall_at(found, exact), "distances_per_query": stats.ndis / len(queries)}
    if timed:
        latencies = []
        for query in queries:
            started = time.perf_counter()
            index.search(query[None], exact.shape[1])
            latencies.append(1000 * (time.perf_counter() - started))
        result |= {
            "latency_ms_p50": float(np.percentile(latencies, 50)),
            "latency_ms_p99": float(np.percentile(latencies, 99)),
        }
    return result


def sweep(database: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> dict:
    """Recall and cost of HNSW (M x efConstruction x efSearch) and IVF (nlist x nprobe) at this size."""
    results: dict = {"hnsw": [], "ivf": []}
    for m, construction in [(16, 100), (32, 100), (32, 200), (48, 200)]:
        started = time.perf_counter()
        graph = hnsw_index(database, IndexSettings(hnsw_m=m, ef_construction=construction))
        built = time.perf_counter() - started
        for search in [64, 128, 256, 512, 1024]:
            graph.hnsw.efSearch = search
            row = {"M": m, "efConstruction": construction, "efSearch": search, "build_seconds": built}
            results["hnsw"].append(row | measure(graph, queries, exact, faiss.cvar.hnsw_stats, timed=False))
            print(results["hnsw"][-1], flush=True)
    lists = int(4 * np.sqrt(len(database)))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(database.shape[1]), lists, faiss.METRIC_INNER_PRODUCT)
    started = time.perf_counter()
    ivf.train(database[: max(lists * 39, 10_000)])
    ivf.add(database)
    built = time.perf_counter() - started
    for probes in [8, 32, 64, 128, 256]:
        ivf.nprobe = probes
        row = {"nlist": lists, "nprobe": probes, "build_seconds": built}
        results["ivf"].append(row | measure(ivf, queries, exact, faiss.cvar.indexIVF_stats, timed=False))
        print(results["ivf"][-1], flush=True)
    return results


def ann(arguments: argparse.Namespace) -> dict:
    rng = np.random.default_rng(arguments.seed)
    database = unit_vectors(arguments.n, arguments.dim, rng)
    queries = (
        near_queries(database, arguments.queries, rng)
        if arguments.near
        else unit_vectors(arguments.queries, arguments.dim, rng)
    )
    exact_index = faiss.IndexFlatIP(arguments.dim)
    exact_index.add(database)
    _, exact = exact_index.search(queries, 10)
    del exact_index
    result = {
        "n": arguments.n,
        "dim": arguments.dim,
        "queries": arguments.queries,
        "query_kind": "near (database vector + noise)" if arguments.near else "random unit vectors",
        "faiss_threads": faiss.omp_get_max_threads(),
        "machine": machine_description(),
    }
    if arguments.sweep:
        return result | sweep(database, queries, exact)
    settings = dataclasses.replace(
        IndexSettings(),
        **{
            k: v
            for k, v in [
                ("hnsw_m", arguments.m),
                ("ef_construction", arguments.ef_construction),
                ("ef_search", arguments.ef_search),
            ]
            if v is not None
        },
    )
    started = time.perf_counter()
    graph = hnsw_index(database, settings)
    result |= {
        "index": "IndexHNSWFlat (inner product)",
        **dataclasses.asdict(settings),
        "build_seconds": time.perf_counter() - started,
    }
    return result | measure(graph, queries, exact, faiss.cvar.hnsw_stats, timed=True)


def caption_recall(index, model, records) -> dict:
    """Text->video R@1/5/10 of the records' captions through `index`: a hit when the caption's own clip is in the top k."""
    ids = {clip: number for number, clip in enumerate(index.clips)}
    hits = index.search_text(model, [r.caption for r in records], k=10)
    found = [[hit.id for hit in row] for row in hits]
    return {
        f"t2v_R@{k}": float(np.mean([ids[r.clip] in row[:k] for r, row in zip(records, found)])) for k in (1, 5, 10)
    }


def e2e(arguments: argparse.Namespace) -> dict:
    """R@k of the manifest's captions through two indexes of its clips, beside the evaluation suite's exact-clip R@k:
    one built by `VideoIndex.build` from the videos (what `vljepa index build` does: tokens straight from the
    X-encoder), one from the suite's own predictions (the feature cache's float16 tokens), which must agree exactly."""
    import torch

    from vljepa.data.feature_cache import FeatureCache, default_cache_dir
    from vljepa.data.manifest import load_manifest
    from vljepa.eval.suite import evaluate_manifest
    from vljepa.model import VLJepa
    from vljepa.tasks.embed import predict_tokens
    from vljepa.tasks.index import VideoIndex

    model = VLJepa.from_pretrained(arguments.model)
    records = [r for r in load_manifest(arguments.manifest) if r.caption]
    clips = list(dict.fromkeys(r.clip for r in records))
    cache = FeatureCache(arguments.cache_dir or default_cache_dir(), model.x_encoder)
    suite = evaluate_manifest(model, arguments.manifest, cache, generation=False)["retrieval"]["exact"]
    tokens = cache.tokens(clips)
    with tempfile.TemporaryDirectory() as folder:
        from_videos = VideoIndex.build(model, clips, Path(folder) / "videos")
        from_cache = VideoIndex.create(model, Path(folder) / "cache")
        from_cache.add_vectors(
            predict_tokens(model, torch.stack([tokens[c] for c in clips]), [None] * len(clips)), clips
        )
    return {
        "model": str(arguments.model),
        "manifest": str(arguments.manifest),
        "captions": len(records),
        "clips_indexed": len(from_videos),
        "skipped": from_videos.failed,
        "index_built_from_videos": caption_recall(from_videos, model, records),
        "index_of_the_suite_predictions": caption_recall(from_cache, model, records),
        "eval_suite": {k: v for k, v in suite.items() if k.startswith("t2v_")},
        "machine": machine_description(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    approximate = commands.add_parser("ann", help="HNSW build time, latency and recall on random vectors")
    approximate.add_argument("--n", type=int, default=1_000_000)
    approximate.add_argument("--dim", type=int, default=256)
    approximate.add_argument("--queries", type=int, default=1000)
    approximate.add_argument("--near", action="store_true", help="queries near database vectors (default: random)")
    approximate.add_argument("--sweep", action="store_true", help="recall/cost of several HNSW and IVF settings")
    approximate.add_argument("--m", type=int, help="HNSW M (default: the library's)")
    approximate.add_argument("--ef-construction", type=int)
    approximate.add_argument("--ef-search", type=int)
    approximate.add_argument("--seed", type=int, default=0)
    approximate.add_argument("--out", type=Path)
    end_to_end = commands.add_parser("e2e", help="R@k through an index vs vljepa eval's retrieval")
    end_to_end.add_argument("--model", type=Path, required=True)
    end_to_end.add_argument("--manifest", type=Path, required=True)
    end_to_end.add_argument("--cache-dir", type=Path)
    end_to_end.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    result = ann(arguments) if arguments.command == "ann" else e2e(arguments)
    text = json.dumps(result, indent=2)
    print(text)
    if arguments.out:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
