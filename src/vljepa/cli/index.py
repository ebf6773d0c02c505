"""Commands of the persistent video index: `vljepa index build|add` and `vljepa search` (registered in `main.py`).

`--videos` is a folder (every video or image file, whole, or cut into sliding windows with `--window`)
or a JSONL manifest (its distinct clips); `vljepa.data.clip_source.resolve_clip_source` is the one place
it is resolved. Paths, the model's config and the index folder are checked before a model loads, so a
wrong argument is one error line at once. Clips that cannot be decoded are listed on stderr and skipped.
`vljepa search` answers from the index alone: the videos are not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .support import existing_folder, load_inference_model, load_model

if TYPE_CHECKING:
    from ..data.clip_source import ClipSource
    from ..tasks.index import Hit, VideoIndex

index_app = typer.Typer(
    no_args_is_help=True, help="A persistent search index of a video library (FAISS over caption-mode predictions)."
)

IndexModelOption = Annotated[
    Path,
    typer.Option(
        "--model",
        "-m",
        help="The trained model directory that builds (and searches) the index; `search` also takes its "
        "`vljepa export onnx` folder.",
    ),
]
VideosOption = Annotated[
    str,
    typer.Option(
        help="A folder of videos/images, or a JSONL manifest or shard source whose distinct clips are indexed."
    ),
]
WindowOption = Annotated[
    float | None, typer.Option(help="Cut a folder's videos into windows of this many seconds (default: whole files).")
]
StrideOption = Annotated[float | None, typer.Option(help="Seconds between window starts (default: --window).")]
BatchOption = Annotated[int, typer.Option(help="Clips embedded per batch.")]


def format_hit(hit: Hit) -> str:
    """`+0.812  /videos/a.mp4  [2.00-4.00 s]` (the window only for a cut clip; an open end shows as `end`)."""
    if hit.start is None and hit.end is None:
        return f"{hit.score:+.3f}  {hit.path}"
    end = "end" if hit.end is None else f"{hit.end:.2f}"
    return f"{hit.score:+.3f}  {hit.path}  [{hit.start or 0.0:.2f}-{end} s]"


def _clip_source(videos: str, model: Path, window: float | None, stride: float | None, indexed=()) -> ClipSource:
    """`--videos` resolved with the model's frame count from its config.json only (nothing is decoded yet), so a
    wrong path is reported before the model loads."""
    from ..config import ModelConfig, read_config_json
    from ..data.clip_source import resolve_clip_source
    from ..model.vljepa import CONFIG_FILE

    config = read_config_json(ModelConfig, model / CONFIG_FILE, "vljepa checkpoint")
    return resolve_clip_source(videos, config.x_encoder.num_frames, window, stride, indexed)


def _fill(index: VideoIndex, vljepa, source: ClipSource, batch_size: int) -> int:
    added = index.add_decoded(vljepa, source.clips, source.total, batch_size)
    for message in index.failed.values():  # each names its file
        typer.echo(f"skipped {message}", err=True)
    return added


@index_app.command("build")
def build_command(
    videos: VideosOption,
    model: IndexModelOption,
    out: Annotated[Path, typer.Option(help="The index folder to write (new, empty, or an index to replace).")],
    window: WindowOption = None,
    stride: StrideOption = None,
    batch_size: BatchOption = 32,
):
    """Embed every clip of a library once (caption mode) and save a search index of them."""
    from ..tasks.index import VideoIndex, check_build_target

    existing_folder(model)
    check_build_target(out)
    source = _clip_source(videos, model, window, stride)
    vljepa = load_model(model)
    index = VideoIndex.create(vljepa, out, model_source=str(model.resolve()))
    _fill(index, vljepa, source, batch_size)
    index.require_clips()
    index.save()
    typer.echo(f"{out}: {len(index)} clips indexed ({index.meta['faiss']['type']}), {len(index.failed)} skipped")


@index_app.command("add")
def add_command(
    index_dir: Annotated[Path, typer.Argument(metavar="INDEX", help="An index folder made by `vljepa index build`.")],
    videos: VideosOption,
    model: IndexModelOption,
    window: WindowOption = None,
    stride: StrideOption = None,
    batch_size: BatchOption = 32,
):
    """Add the clips of more videos to an index (those already in it are not read again); the model must be the one that built it."""
    from ..tasks.index import VideoIndex

    existing_folder(model)
    index = VideoIndex.open(index_dir)
    source = _clip_source(videos, model, window, stride, set(index.clips))
    vljepa = load_model(model)
    index.check_model(vljepa)
    added = _fill(index, vljepa, source, batch_size)
    index.save()
    typer.echo(
        f"{index_dir}: {added} clips added, {len(index)} in all ({index.meta['faiss']['type']}), "
        f"{len(index.failed)} skipped"
    )


def search_index(index_dir: Path, model: Path, text: str, k: int) -> list[Hit]:
    """The `k` clips of the index nearest to `text` (checks paths and the index before the model loads)."""
    from ..tasks.index import VideoIndex

    existing_folder(model)
    index = VideoIndex.open(index_dir)
    return index.search_text(load_inference_model(model), [text], k)[0]


def search_command(
    index_dir: Annotated[Path, typer.Argument(metavar="INDEX", help="An index folder made by `vljepa index build`.")],
    text: Annotated[str, typer.Argument(help="What to look for, e.g. 'a red square moves left'.")],
    model: IndexModelOption,
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many clips to list.")] = 5,
):
    """Text -> video search in an index: rank, score, file and window of the nearest clips (the videos are not read)."""
    from ..tasks.requests import SearchRequest, checked

    checked(SearchRequest, text=text)
    for rank, hit in enumerate(search_index(index_dir, model, text, k), start=1):
        typer.echo(f"{rank:>3}  {format_hit(hit)}")
