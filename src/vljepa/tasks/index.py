"""A persistent FAISS index of a video library's caption-mode predictions, tied to the model that built it.

Text -> video search without re-reading the videos: each clip is embedded once (`encode_video` with no
query, L2-normalised: the predictor's caption-mode output, the vector that caption pretraining pulls
towards the clip's caption embedding), and a query is one Y-encoder pass and a FAISS search.
- Ids are row numbers, in the order clips were added; `clips.json` maps them to `[path, start, end]`
  (paths resolved when added: absolute, `..` and symlinks removed, so the index answers from any working
  folder and one file has one name; moving the library breaks them). A clip already indexed (same path
  and window) is not added twice.
- Exact search (`IndexFlatIP`) up to `flat_limit` vectors (100,000: one query scans 100 MB); past it the
  vectors are re-indexed once for approximate search: 4-bit product-quantisation codes of 2-d sub-vectors
  scanned with SIMD (`IndexPQFastScan`: d/4 bytes a clip, 64 for 256-d), whose best `k * k_factor`
  candidates are re-ranked exactly (`IndexRefineFlat`, which keeps the full vectors, so scores stay
  exact). Ours, chosen by measurement (benchmarks/vector_index.py on 256-d random unit vectors, the hard
  case where a query's ten nearest are barely nearer than the rest;
  benchmarks/results/vector_index_sweep_100k.json): at 100k this finds 99.9% of the ten nearest
  (recall@10 against exact search) scanning 64 bytes a vector, where HNSW (`IndexHNSWFlat`, M=32)
  computes 41% of the exact distances for 0.93 and 84% for 0.999, and IVF (`IndexIVFFlat`, 1264 lists)
  81% for 0.97; building the HNSW graph also took over a hundred times as long as training and filling
  the codes. Its parameters (sub-quantizers, bits, k_factor, training-set size) are recorded in
  `meta.json`. The codebooks are trained once, on the vectors present at the switch; later clips are
  encoded with them (the exact re-ranking keeps scores exact whatever the drift). Both index types keep
  the vectors (`reconstruct_n`).
- Scores are inner products of unit vectors (cosines): `search` normalises its queries.
- Tied to its model: `meta.json` records `VLJepa.fingerprint()`, a hash of everything the embeddings depend
  on (the config, the X-encoder's weight fingerprint, every trained weight: predictor, Y-encoder head, the
  text model when trained; not the Y-decoder), and `open(directory, model)` / `search_text(model, ...)`
  refuse another model with `IndexModelMismatch`. The model's ONNX export carries the same fingerprint, so
  it searches the index too.
- Persistence: `save()` writes `meta.json`, `vectors.faiss` and `clips.json` into a fresh folder and swaps
  it in (`vljepa.core.atomic.atomic_directory`), so a reader sees the old index or the new one, never a mix.
  `build` saves; `add` changes the index in memory until `save()`. Each save counts a revision in
  `meta.json`, under an exclusive lock on `<index>.lock` beside the folder: a save whose copy was read
  before another writer's save is refused, not merged, so no writer's clips are silently lost. In one
  process, searches may run concurrently with each other (FAISS search is read-only), not with `add`.
- Clips that cannot be decoded are reported in `failed` (message per clip) and skipped, as in the feature cache.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np
import torch
import torch.nn.functional as F

from ..core.atomic import atomic_directory, exclusive_lock, readable_directory
from ..core.progress import progress_bar
from ..data.clip_source import DecodedClip, read_clips
from ..data.manifest import ClipRef
from ..errors import VljepaError
from ..model.vljepa import VLJepa

if TYPE_CHECKING:
    from ..deploy.runtime import OnnxVLJepa

FORMAT = "vljepa-video-index"
VERSION = 1
META_FILE, VECTORS_FILE, CLIPS_FILE = "meta.json", "vectors.faiss", "clips.json"

ClipEntry = ClipRef | tuple[str, float | None, float | None] | str | Path


class VideoIndexError(VljepaError, ValueError):
    """An index folder that is missing, damaged or not an index; the message names it."""


class IndexModelMismatch(VideoIndexError):
    """The index was built by another model than the one given; the message names both."""


@dataclass(frozen=True)
class Hit:
    """One search result: the clip's id (row) in the index, its file and window, and its cosine score."""

    id: int
    path: str
    start: float | None
    end: float | None
    score: float


@dataclass(frozen=True)
class IndexSettings:
    """When to leave exact search, and the approximate index's parameters (see benchmarks/vector_index.py)."""

    flat_limit: int = 100_000  # vectors searched exactly; more -> PQ fast-scan + exact re-ranking
    dims_per_code: int = 2  # dimensions per 4-bit PQ sub-quantizer (d / this = sub-quantizers; 1 if d is odd)
    k_factor: int = 50  # candidates re-ranked exactly: k * k_factor
    train_size: int = 200_000  # vectors (at most) the PQ codebooks are trained on


def as_clip_ref(entry: ClipEntry) -> ClipRef:
    """A `ClipRef` with its path resolved, from a ClipRef, a (path, start, end) tuple or a bare path."""
    if isinstance(entry, ClipRef):
        path, start, end = entry.path, entry.start, entry.end
    elif isinstance(entry, (str, Path)):
        path, start, end = entry, None, None
    else:
        path, start, end = entry
    return ClipRef(str(Path(path).resolve()), start, end)


def approximate_index(vectors: np.ndarray, settings: IndexSettings, seed: int = 0) -> faiss.IndexRefineFlat:
    """Unit vectors (n, d) in a PQ fast-scan index (4-bit codes, codebooks trained on up to `train_size` of
    them) whose candidates are re-ranked exactly by inner product; returns it with its `meta.json` record."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    subquantizers = dim // settings.dims_per_code if dim % settings.dims_per_code == 0 else dim
    codes = faiss.IndexPQFastScan(dim, subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(seed).permutation(len(vectors))[: settings.train_size]
    codes.train(vectors[np.sort(sample)])
    index = faiss.IndexRefineFlat(codes)
    index.k_factor = settings.k_factor
    index.add(vectors)
    return index


def approximate_record(index: faiss.Index, settings: IndexSettings, trained_on: int) -> dict:
    """What `meta.json` says of an approximate index: its type and parameters."""
    codes = faiss.downcast_index(index.base_index)
    return {
        "type": "pq_fastscan_refine",
        "subquantizers": codes.pq.M,
        "bits": codes.pq.nbits,
        "k_factor": settings.k_factor,
        "trained_on": trained_on,
    }


def check_build_target(directory: str | Path) -> Path:
    """`directory` if an index may be written there: absent, empty, or an index (replaced); refused otherwise,
    so that building into a folder of other files never deletes them."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        if not (directory / META_FILE).is_file():
            raise VideoIndexError(f"{directory}: exists and is not a video index; give a new or empty folder")
    return directory


def _saved_revision(directory: Path) -> int | None:
    """The revision of the index saved in `directory` (each save adds one), None when there is none."""
    folder = readable_directory(directory)
    try:
        return json.loads((folder / META_FILE).read_text()).get("revision", 0) if folder else None
    except (OSError, ValueError, AttributeError):  # absent, or not an index's meta.json
        return None


def _read_index_files(directory: Path) -> tuple[dict, list[ClipRef], faiss.Index]:
    """`meta.json`, the clips and the FAISS index of the index saved in `directory`, checked against each other."""
    folder = readable_directory(directory)
    if folder is None:
        raise VideoIndexError(f"{directory}: no such index folder")
    if not (folder / META_FILE).is_file():
        raise VideoIndexError(f"{directory}: not a video index (no {META_FILE}); build one with `vljepa index build`")
    try:
        meta = json.loads((folder / META_FILE).read_text())
        clips = [ClipRef(*row) for row in json.loads((folder / CLIPS_FILE).read_text())]
        vectors = faiss.read_index(str(folder / VECTORS_FILE))
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        raise VideoIndexError(f"{directory}: damaged video index ({error})") from error
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise VideoIndexError(
            f"{directory}: {META_FILE} is not a {FORMAT} version {VERSION} "
            f"(format {meta.get('format')!r}, version {meta.get('version')!r})"
        )
    if vectors.ntotal != len(clips) or vectors.d != meta["dim"]:
        raise VideoIndexError(
            f"{directory}: damaged video index ({vectors.ntotal} vectors of {vectors.d} dimensions, "
            f"{len(clips)} clips, {meta['dim']} dimensions recorded)"
        )
    return meta, clips, vectors


def _describe(clip: ClipRef) -> str:
    return clip.path if clip.start is None and clip.end is None else f"{clip.path} [{clip.start}, {clip.end})"


class VideoIndex:
    """Caption-mode embeddings of clips in a FAISS index, with ids -> (path, start, end); see the module doc."""

    def __init__(self, directory: Path, vectors: faiss.Index, clips: list[ClipRef], meta: dict):
        self.directory = directory
        self.vectors = vectors
        self.clips = clips
        self.meta = meta
        self.settings = IndexSettings(**meta["settings"])
        self.failed: dict[str, str] = {}  # clip -> why it was skipped, for this session
        self._ids = {clip: number for number, clip in enumerate(clips)}
        self._read_revision: int | None = meta.get("revision", 0)  # the saved version `save` expects to replace
        self._checked_models: weakref.WeakSet = weakref.WeakSet()

    # --- creating, opening, saving --------------------------------------------------------------

    @classmethod
    def create(
        cls,
        model: VLJepa,
        directory: str | Path,
        settings: IndexSettings | None = None,
        model_source: str | None = None,
    ) -> VideoIndex:
        """An empty index for `model`, to be saved into `directory` (which must be empty, absent or an index).
        `model_source` (e.g. the model's folder) is recorded to name the model in errors."""
        directory = check_build_target(directory)
        settings = settings or IndexSettings()
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "model": {"fingerprint": model.fingerprint(), "source": model_source},
            "dim": model.config.shared_dim,
            "settings": asdict(settings),
            "faiss": {"type": "flat"},
        }
        index = cls(directory, faiss.IndexFlatIP(model.config.shared_dim), [], meta)
        index._read_revision = _saved_revision(directory)  # an index being rebuilt is replaced
        index._checked_models.add(model)
        return index

    @classmethod
    def build(
        cls,
        model: VLJepa,
        clips: Iterable[ClipEntry],
        directory: str | Path,
        batch_size: int = 32,
        settings: IndexSettings | None = None,
        progress: bool = True,
        model_source: str | None = None,
    ) -> VideoIndex:
        """Embed `clips` (ClipRefs or (path, start, end)) and save the index into `directory`."""
        index = cls.create(model, directory, settings, model_source)
        index.add(model, clips, batch_size, progress)
        index.require_clips()
        index.save()
        return index

    @classmethod
    def open(cls, directory: str | Path, model: VLJepa | None = None) -> VideoIndex:
        """The index saved in `directory`; with `model`, refuse (`IndexModelMismatch`) unless it built it."""
        directory = Path(directory)
        for attempt in range(3):  # a writer's save during the reads: read the new version again
            revision = _saved_revision(directory)
            try:
                meta, clips, vectors = _read_index_files(directory)
            except VideoIndexError:
                if attempt == 2 or _saved_revision(directory) == revision:
                    raise
                continue
            if meta.get("revision", 0) == revision == _saved_revision(directory):
                break
        else:
            raise VideoIndexError(f"{directory}: saved by other writers while being read, three times; try again")
        index = cls(directory, vectors, clips, meta)
        index._apply_search_parameters()
        if model is not None:
            index.check_model(model)
        return index

    def save(self) -> None:
        """Write the index into its folder atomically (the old version or the new one survives a crash); refuse
        (`VideoIndexError`) if another writer saved it since this one was read, rather than lose its clips."""

        def fill(folder: Path) -> None:
            faiss.write_index(self.vectors, str(folder / VECTORS_FILE))
            (folder / CLIPS_FILE).write_text(json.dumps([[c.path, c.start, c.end] for c in self.clips]))
            (folder / META_FILE).write_text(json.dumps(self.meta, indent=2))

        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.directory.with_name(self.directory.name + ".lock")):
            on_disk = _saved_revision(self.directory)
            if on_disk != self._read_revision:
                raise VideoIndexError(
                    f"{self.directory}: saved by another writer (revision {on_disk}) since this copy was read "
                    f"(revision {self._read_revision}); open it again and repeat the additions"
                )
            self.meta["revision"] = (on_disk or 0) + 1
            self.meta["count"] = len(self)
            atomic_directory(self.directory, fill)
            self._read_revision = self.meta["revision"]

    def check_model(self, model: VLJepa | OnnxVLJepa) -> None:
        """Raise `IndexModelMismatch` unless `model` is the model that built the index (or its ONNX export)."""
        if model in self._checked_models:
            return
        built_by = self.meta["model"]
        given = model.fingerprint()
        if given != built_by["fingerprint"]:
            source = f" ({built_by['source']})" if built_by.get("source") else ""
            raise IndexModelMismatch(
                f"{self.directory}: built by the model with fingerprint {built_by['fingerprint']}{source}, "
                f"not by the given model (fingerprint {given}); search it with that model or rebuild the index"
            )
        self._checked_models.add(model)

    # --- adding ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.clips)

    def add(self, model: VLJepa, clips: Iterable[ClipEntry], batch_size: int = 32, progress: bool = True) -> int:
        """Embed and add the clips not yet indexed (in memory; `save()` writes them). Returns how many were added."""
        wanted = [c for c in dict.fromkeys(as_clip_ref(entry) for entry in clips) if c not in self._ids]
        decoded = read_clips(wanted, model.config.x_encoder.num_frames, batch_size)
        return self.add_decoded(model, decoded, len(wanted), batch_size, progress)

    def add_decoded(
        self,
        model: VLJepa,
        decoded: Iterable[DecodedClip],
        total: int | None = None,
        batch_size: int = 32,
        progress: bool = True,
    ) -> int:
        """Add already decoded clips (a `vljepa.data.clip_source` stream): embed them `batch_size` at a time;
        errors go to `failed`, clips already indexed are skipped. Returns how many were added."""
        self.check_model(model)
        added, batch = 0, []
        description = f"indexing {total} clips" if total is not None else "indexing clips"
        with progress_bar(description, total, enabled=progress) as advance:
            for clip, frames in decoded:
                clip = as_clip_ref(clip)
                if isinstance(frames, Exception):
                    self.failed[_describe(clip)] = str(frames)
                elif clip not in self._ids and clip not in (c for c, _ in batch):
                    batch.append((clip, frames))
                if len(batch) == batch_size:
                    added += self._add_batch(model, batch)
                    batch = []
                advance()
            added += self._add_batch(model, batch)
        return added

    def _add_batch(self, model: VLJepa, batch: list[tuple[ClipRef, torch.Tensor]]) -> int:
        if not batch:
            return 0
        with model.inference():
            # a list, not a stacked tensor: clips of different sizes are resized by the X-encoder's preprocessing
            embedded = model.encode_video([frames for _, frames in batch])
        self.add_vectors(embedded, [clip for clip, _ in batch])
        return len(batch)

    def add_vectors(self, vectors: torch.Tensor | np.ndarray, clips: list[ClipEntry]) -> None:
        """Add embeddings (n, d) computed elsewhere with the index's model, one per clip (in memory). The
        rows are L2-normalised and the paths resolved here; duplicates are not checked: `add` and
        `add_decoded` do that."""
        if len(vectors) != len(clips) or vectors.shape[1] != self.meta["dim"]:
            raise ValueError(f"expected ({len(clips)}, {self.meta['dim']}) vectors, got {tuple(vectors.shape)}")
        rows = F.normalize(torch.as_tensor(vectors).detach().float().cpu(), dim=-1).numpy()
        self.vectors.add(np.ascontiguousarray(rows))
        for clip in map(as_clip_ref, clips):
            self._ids[clip] = len(self.clips)
            self.clips.append(clip)
        if self.meta["faiss"]["type"] == "flat" and len(self) > self.settings.flat_limit:
            self._become_approximate()

    def _become_approximate(self) -> None:
        """Re-index every vector for approximate search (the flat index keeps them: `reconstruct_n`)."""
        everything = self.vectors.reconstruct_n(0, self.vectors.ntotal)
        self.vectors = approximate_index(everything, self.settings)
        self.meta["faiss"] = approximate_record(
            self.vectors, self.settings, min(len(everything), self.settings.train_size)
        )

    def _apply_search_parameters(self) -> None:
        if self.meta["faiss"]["type"] == "pq_fastscan_refine":
            self.vectors.k_factor = self.meta["faiss"]["k_factor"]

    def require_clips(self) -> None:
        """Raise `VideoIndexError` (with the first failures) when nothing could be indexed."""
        if not len(self):
            reasons = "; ".join(list(self.failed.values())[:3])
            raise VideoIndexError(
                f"{self.directory}: no clip could be read, nothing to index ({reasons or 'no clips'})"
            )

    # --- searching ------------------------------------------------------------------------------

    def search(self, queries: torch.Tensor | np.ndarray, k: int) -> list[list[Hit]]:
        """The `k` nearest clips (highest cosine) of each query row (Q, d); fewer when the index is smaller."""
        if queries.ndim != 2 or queries.shape[1] != self.meta["dim"]:
            raise ValueError(f"queries must be (Q, {self.meta['dim']}), got {tuple(queries.shape)}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not len(self):
            return [[] for _ in range(len(queries))]
        normalised = F.normalize(torch.as_tensor(queries).detach().float().cpu(), dim=-1).numpy()
        scores, ids = self.vectors.search(np.ascontiguousarray(normalised), min(k, len(self)))
        return [
            [
                Hit(int(i), self.clips[i].path, self.clips[i].start, self.clips[i].end, float(s))
                for s, i in zip(row_scores, row_ids)
                if i >= 0
            ]
            for row_scores, row_ids in zip(scores, ids)
        ]

    def search_text(self, model: VLJepa | OnnxVLJepa, texts: list[str], k: int) -> list[list[Hit]]:
        """Search with the Y-encoder embeddings of `texts`; `model` must be the one that built the index, or its
        ONNX export."""
        self.check_model(model)
        with model.inference():
            queries = model.encode_text(texts)
        return self.search(queries, k)
