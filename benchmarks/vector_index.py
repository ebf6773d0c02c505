"""The video index's approximate search, and its end-to-end agreement with `vljepa eval`'s retrieval.

`ann`: N random 256-d unit vectors in the approximate index the video index switches to past its flat
limit (`vljepa.tasks.index.approximate_index`: 4-bit PQ fast-scan codes, candidates re-ranked exactly;
the library's settings unless overridden): build time, single-query latency p50/p99 (one query at a
time, as search requests arrive), the index file's size, and recall@10 against exact search
(`IndexFlatIP`, whose own single-query latency is measured too: the cost the flat limit bounds), with
the CPU time per query of a batch search. Queries are random unit vectors too: the hard case, where a
query's ten nearest vectors are barely nearer than the rest; `--near` makes each a database vector
plus noise (cosine about 0.7 to it, like a caption and its clip). `--sweep` measures recall and cost at
the same size for HNSW (`IndexHNSWFlat`, several efSearch), IVF (`IndexIVFFlat`, several nprobe) and
PQ fast-scan + re-ranking (several code sizes and k_factors): how the library's index and settings
were chosen. Time figures mean something only on a machine running nothing else; `--recall-only`
leaves them out.

    python benchmarks/vector_index.py ann --n 1000000 --out benchmarks/results/vector_index_1m.json
    python benchmarks/vector_index.py ann --n 100000 --sweep --out benchmarks/results/vector_index_sweep_100k.json
    python benchmarks/vector_index.py ann --n 1000000 --recall-only   # recall alone, e.g. while other jobs run

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
from vljepa.tasks.index import IndexSettings, approximate_index, approximate_record


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


def measure(index: faiss.Index, queries: np.ndarray, exact: np.ndarray, stats=None) -> dict:
    """Recall@k of a batch search against `exact`, its CPU milliseconds per query and (given the index
    type's faiss stats object) its distance computations per query."""
    if stats is not None:
        stats.reset()
    started = time.process_time()
    _, found = index.search(queries, exact.shape[1])
    result = {
        "recall@10": recall_at(found, exact),
        "cpu_ms_per_query": 1000 * (time.process_time() - started) / len(queries),
    }
    return result | ({"distances_per_query": stats.ndis / len(queries)} if stats is not None else {})


def single_query_latency(index: faiss.Index, queries: np.ndarray, k: int = 10) -> dict:
    """p50/p99 wall-clock milliseconds of searching the queries one at a time."""
    latencies = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None], k)
        latencies.append(1000 * (time.perf_counter() - started))
    return {
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p99": float(np.percentile(latencies, 99)),
    }


def timed_build(build) -> tuple[faiss.Index, float]:
    started = time.perf_counter()
    return build(), time.perf_counter() - started


def sweep(database: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> dict:
    """Recall and cost of HNSW (efSearch), IVF (nprobe) and PQ fast-scan + re-ranking (code size, k_factor)."""
    results: dict = {"hnsw": [], "ivf": [], "pq_fastscan_refine": []}

    def report(kind: str, row: dict) -> None:
        results[kind].append(row)
        print(kind, row, flush=True)

    dim = database.shape[1]

    def hnsw() -> faiss.Index:
        graph = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = 100
        graph.add(database)
        return graph

    graph, built = timed_build(hnsw)
    for search in [256, 1024, 4096]:
        graph.hnsw.efSearch = search
        row = {"M": 32, "efConstruction": 100, "efSearch": search, "build_seconds": built}
        report("hnsw", row | measure(graph, queries, exact, faiss.cvar.hnsw_stats))
    del graph
    lists = int(4 * np.sqrt(len(database)))

    def ivf() -> faiss.Index:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(database[: lists * 39])
        index.add(database)
        return index

    inverted, built = timed_build(ivf)
    for probes in [16, 64, 256, 1024]:
        inverted.nprobe = probes
        row = {"nlist": lists, "nprobe": probes, "build_seconds": built}
        report("ivf", row | measure(inverted, queries, exact, faiss.cvar.indexIVF_stats))
    del inverted
    for dims_per_code in [4, 2]:
        settings = IndexSettings(dims_per_code=dims_per_code)
        index, built = timed_build(lambda: approximate_index(database, settings))  # noqa: B023 (called at once)
        for k_factor in [10, 20, 50, 100]:
            index.k_factor = k_factor
            row = approximate_record(
                index, dataclasses.replace(settings, k_factor=k_factor), min(len(database), settings.train_size)
            )
            report("pq_fastscan_refine", row | {"build_seconds": built} | measure(index, queries, exact))
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
    exact_latency = single_query_latency(exact_index, queries[: arguments.exact_queries])
    del exact_index
    result = {
        "n": arguments.n,
        "dim": arguments.dim,
        "queries": arguments.queries,
        "query_kind": "near (database vector + noise)" if arguments.near else "random unit vectors",
        "faiss_threads": faiss.omp_get_max_threads(),
        "exact_search": {"index": "IndexFlatIP", "queries": arguments.exact_queries, **exact_latency},
        "machine": machine_description(),
    }
    if arguments.sweep:
        return result | sweep(database, queries, exact)
    overrides = {"dims_per_code": arguments.dims_per_code, "k_factor": arguments.k_factor}
    settings = dataclasses.replace(IndexSettings(), **{k: v for k, v in overrides.items() if v is not None})
    index, built = timed_build(lambda: approximate_index(database, settings))
    record = approximate_record(index, settings, min(len(database), settings.train_size))
    with tempfile.TemporaryDirectory() as folder:
        faiss.write_index(index, f"{folder}/vectors.faiss")
        size = Path(f"{folder}/vectors.faiss").stat().st_size
    result |= {"index": record, "index_file_bytes": size, "build_seconds": built} | measure(index, queries, exact)
    return result | single_query_latency(index, queries)


def without_timings(result):
    """`result` without its time figures (keys in seconds or milliseconds): recall measured while other jobs share the machine."""
    if isinstance(result, dict):
        return {k: without_timings(v) for k, v in result.items() if "seconds" not in k and "_ms" not in k}
    return [without_timings(v) for v in result] if isinstance(result, list) else result


def caption_recall(index, model, records) -> dict:
    """Text->video R@1/5/10 of the records' captions through `index`: a hit when the caption's own clip is in the top k."""
    ids = {clip: number for number, clip in enumerate(index.clips)}
    hits = index.search_text(model, [r.caption for r in records], k=10)
    found = [[hit.id for hit in row] for row in hits]
    return {
        f"t2v_R@{k}": float(np.mean([ids[r.clip] in row[:k] for r, row in zip(records, found)])) for k in (1, 5, 10)
    }


def compare_with_eval(model_dir: Path, manifest: Path, cache_dir: Path | None = None) -> dict:
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

    model = VLJepa.from_pretrained(model_dir)
    records = [r for r in load_manifest(manifest) if r.caption]
    clips = list(dict.fromkeys(r.clip for r in records))
    cache = FeatureCache(cache_dir or default_cache_dir(), model.x_encoder)
    suite = evaluate_manifest(model, manifest, cache, generation=False)["retrieval"]["exact"]
    tokens = cache.tokens(clips)
    with tempfile.TemporaryDirectory() as folder:
        from_videos = VideoIndex.build(model, clips, Path(folder) / "videos")
        from_cache = VideoIndex.create(model, Path(folder) / "cache")
        from_cache.add_vectors(
            predict_tokens(model, torch.stack([tokens[c] for c in clips]), [None] * len(clips)), clips
        )
    return {
        "model": str(model_dir),
        "manifest": str(manifest),
        "captions": len(records),
        "clips_indexed": len(from_videos),
        "skipped": from_videos.failed,
        "index_built_from_videos": caption_recall(from_videos, model, records),
        "index_of_the_suite_predictions": caption_recall(from_cache, model, records),
        "eval_suite": {k: v for k, v in suite.items() if k.startswith("t2v_R@")},
        "machine": machine_description(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    approximate = commands.add_parser("ann", help="approximate index: build time, latency and recall on random vectors")
    approximate.add_argument("--n", type=int, default=1_000_000)
    approximate.add_argument("--dim", type=int, default=256)
    approximate.add_argument("--queries", type=int, default=1000)
    approximate.add_argument("--near", action="store_true", help="queries near database vectors (default: random)")
    approximate.add_argument("--sweep", action="store_true", help="recall/cost of several HNSW and IVF settings")
    approximate.add_argument(
        "--dims-per-code", type=int, help="dimensions per 4-bit sub-quantizer (default: the library's)"
    )
    approximate.add_argument("--k-factor", type=int, help="candidates re-ranked per result (default: the library's)")
    approximate.add_argument("--seed", type=int, default=0)
    approximate.add_argument(
        "--recall-only", action="store_true", help="leave the time figures out (for a machine shared with other jobs)"
    )
    approximate.add_argument("--exact-queries", type=int, default=100, help="single queries timed on exact search")
    approximate.add_argument("--out", type=Path)
    end_to_end = commands.add_parser("e2e", help="R@k through an index vs vljepa eval's retrieval")
    end_to_end.add_argument("--model", type=Path, required=True)
    end_to_end.add_argument("--manifest", type=Path, required=True)
    end_to_end.add_argument("--cache-dir", type=Path)
    end_to_end.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    if arguments.command == "ann":
        result = ann(arguments)
    else:
        result = compare_with_eval(arguments.model, arguments.manifest, arguments.cache_dir)
    if getattr(arguments, "recall_only", False):
        result = without_timings(result)
    text = json.dumps(result, indent=2)
    print(text)
    if arguments.out:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
