"""Shards: manifest -> tar shards -> the same records and frames; video2dataset's layout; bad sources."""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from conftest import moving_square
from PIL import Image
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.core.sizes import parse_size
from vljepa.data.clip_source import resolve_clip_source
from vljepa.data.manifest import ManifestError, load_manifest
from vljepa.data.shards import (
    RECORDS_KEY,
    ShardError,
    extracted_records,
    is_shard_source,
    load_records,
    read_shard,
    record_fields,
    shard_list,
    source_entries,
    write_shards,
)
from vljepa.data.video import read_clip, write_video
from vljepa.data.video_bytes import decode_clip


@pytest.fixture(scope="module")
def mixed_manifest(tmp_path_factory) -> Path:
    """Two videos (one with two time windows and an extra field) and an image."""
    root = tmp_path_factory.mktemp("mixed")
    write_video(root / "a.mp4", moving_square(1, 0, 8), fps=8)
    write_video(root / "sub/b.mp4", moving_square(-1, 2, 46), fps=8)
    Image.fromarray(np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)).save(root / "c.png")
    records = [
        {"video": "a.mp4", "caption": "a red square moves right", "meaning": "red right"},
        {"video": "sub/b.mp4", "label": "moving left"},
        {"video": "a.mp4", "question": "which way?", "answer": "right", "options": ["left", "right"], "type": "dir"},
        {"video": "a.mp4", "caption": "the second half", "start": 0.5, "end": 1.0},
        {"video": "c.png", "caption": "a still image"},
    ]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root / "train.jsonl"


def test_shards_round_trip_to_the_same_records_and_frames(mixed_manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("VLJEPA_CACHE_DIR", str(tmp_path / "cache"))  # where load_records extracts shards' videos
    shards = write_shards(mixed_manifest, tmp_path / "shards", max_size=1, progress=False)  # one video per shard
    assert [p.name for p in shards] == ["00000.tar", "00001.tar", "00002.tar"]
    entries = list(source_entries(tmp_path / "shards"))
    assert [(e.key, e.video.ext) for e in entries] == [("000000000", "mp4"), ("000000001", "mp4"), ("000000002", "png")]
    original = load_manifest(mixed_manifest)
    by_video = {}
    for record in original:
        by_video.setdefault(record.clip.path, []).append(record)
    for entry, (path, records) in zip(entries, by_video.items(), strict=True):
        assert [record_fields(r) for r in entry.records] == [record_fields(r) for r in records]
        assert all(r.clip.path == entry.video.name for r in entry.records)
        for shard_record, record in zip(entry.records, records):
            frames = decode_clip(entry.video, 4, shard_record.clip.start, shard_record.clip.end)
            assert torch.equal(frames, read_clip(path, 4, record.clip.start, record.clip.end))
    assert record_fields(entries[0].records[0]) == {"caption": "a red square moves right", "meaning": "red right"}
    again = write_shards(mixed_manifest, tmp_path / "again", max_size=1, progress=False)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in shards]  # reproducible tar files
    # reading a manifest writes nothing: shards given to it are refused by name
    with pytest.raises(ManifestError, match="WebDataset shards, not a JSONL manifest"):
        load_manifest(tmp_path / "shards")
    assert not (tmp_path / "cache").exists()
    # commands that read videos by path get the shards' records with the videos extracted
    extracted = load_records(str(tmp_path / "shards" / "{00000..00002}.tar"))
    assert [record_fields(r) for r in extracted] == [record_fields(r) for rs in by_video.values() for r in rs]
    assert torch.equal(read_clip(extracted[0].clip.path, 4), read_clip(original[0].clip.path, 4))
    library = resolve_clip_source(tmp_path / "shards", num_frames=4)  # vljepa index build --videos SHARDS
    assert library.total == 4 and [clip for clip, _ in library.clips] == list(dict.fromkeys(r.clip for r in extracted))


def test_the_shard_command_writes_one_shard_per_max_size(mixed_manifest, tmp_path):
    result = CliRunner().invoke(
        app, ["shard", str(mixed_manifest), "--out", str(tmp_path / "s"), "--max-size", "500MB"]
    )
    assert result.exit_code == 0, result.output
    assert "1 shards in" in result.output and [p.name for p in shard_list(tmp_path / "s")] == ["00000.tar"]
    meta = json.loads(next(iter(wds.WebDataset(str(tmp_path / "s" / "00000.tar"), shardshuffle=False)))["json"])
    assert [sorted(r) for r in meta[RECORDS_KEY]] == [
        ["caption", "meaning"],
        ["answer", "options", "question", "type"],
        ["caption", "end", "start"],
    ]
    assert parse_size("1GB", "-") == 10**9 and parse_size("64MiB", "-") == 64 * 2**20
    assert parse_size("2.5kb", "-") == 2500
    bad = CliRunner().invoke(app, ["shard", str(mixed_manifest), "--out", str(tmp_path / "t"), "--max-size", "lots"])
    assert bad.exit_code == 2 and "--max-size: expected a size such as 1GB, 500MB or 24GiB, got 'lots'" in bad.output


def test_video2dataset_output_reads_directly(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_video(clip, moving_square(1, 1, 8), fps=8)
    with wds.TarWriter(str(tmp_path / "00000.tar")) as sink:
        meta = {"url": "http://x/1.mp4", "key": "000000000", "status": "success", "caption": "a green square"}
        sink.write(
            {"__key__": "000000000", "mp4": clip.read_bytes(), "txt": "a green square", "json": json.dumps(meta)}
        )
        meta = {"url": "http://x/2.mp4", "key": "000000001", "status": "success"}
        sink.write({"__key__": "000000001", "mp4": clip.read_bytes(), "txt": "from the txt", "json": json.dumps(meta)})
    first, second = read_shard(tmp_path / "00000.tar")
    assert (first.records[0].caption, second.records[0].caption) == ("a green square", "from the txt")
    assert first.records[0].extra == {"url": "http://x/1.mp4", "key": "000000000", "status": "success"}
    assert torch.equal(decode_clip(second.video, 4), read_clip(clip, 4))


def test_a_bad_shard_source_is_an_error_naming_it(tmp_path, mixed_manifest, monkeypatch):
    monkeypatch.setenv("VLJEPA_CACHE_DIR", str(tmp_path / "cache"))
    write_shards(mixed_manifest, tmp_path / "s", max_size=1, progress=False)
    assert is_shard_source(tmp_path / "s") and not is_shard_source("x/train.jsonl")
    with pytest.raises(ShardError, match=r"s/00003.tar: shard not found \(from .*\{00000..00003\}.tar\)"):
        shard_list(str(tmp_path / "s" / "{00000..00003}.tar"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShardError, match="empty: no .tar shards in this folder"):
        shard_list(tmp_path / "empty")
    assert not is_shard_source(tmp_path / "empty")  # a folder without shards (of videos, say) is not a shard source
    (tmp_path / "junk.tar").write_bytes(b"not a tar file" * 100)
    with pytest.raises(ShardError, match="junk.tar: not a readable uncompressed tar shard"):
        list(read_shard(tmp_path / "junk.tar"))
    with wds.TarWriter(str(tmp_path / "novideo.tar")) as sink:
        sink.write({"__key__": "000000007", "json": json.dumps({"caption": "x"}), "txt": "x"})
    with pytest.raises(ShardError, match="novideo.tar: sample 000000007 has no video .*its members: json, txt"):
        list(read_shard(tmp_path / "novideo.tar"))
    with wds.TarWriter(str(tmp_path / "badrecord.tar")) as sink:
        sink.write({"__key__": "000000001", "mp4": b"x", "json": json.dumps({RECORDS_KEY: [{"caption": 3}]})})
    with pytest.raises(ShardError, match='badrecord.tar: sample 000000001 record 0: "caption" must be a non-empty'):
        list(read_shard(tmp_path / "badrecord.tar"))
    result = CliRunner().invoke(
        app,
        ["probe", "--train-manifest", str(tmp_path / "nowhere" / "{0..1}.tar"), "--test-manifest", str(mixed_manifest)],
    )
    assert result.exit_code == 2 and "nowhere/0.tar: shard not found" in result.output


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve():
    """serve(folder) -> the base URL of an HTTP server on 127.0.0.1 serving that folder (stopped after the test)."""
    servers = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_piped_and_http_shards_read_as_the_local_ones(mixed_manifest, tmp_path, serve, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # curl: the test server is local
    folder = tmp_path / "shards"
    write_shards(mixed_manifest, folder, max_size=1, progress=False)  # 00000.tar .. 00002.tar
    local = list(source_entries(folder))
    base = serve(folder)
    sources = {
        f"pipe:cat {folder}/00000.tar": local[:1],
        f"pipe:cat {folder}/{{00001..00002}}.tar": local[1:],  # a brace pattern of two pipes
        f"{base}/{{00000..00002}}.tar": local,
    }
    for source, expected in sources.items():
        assert is_shard_source(source) and len(shard_list(source)) == len(expected)
        entries = list(source_entries(source))
        assert [e.key for e in entries] == [e.key for e in expected]
        for entry, want in zip(entries, expected, strict=True):
            assert [record_fields(r) for r in entry.records] == [record_fields(r) for r in want.records]
            assert entry.video.name.startswith(source.split("{")[0]) and entry.video.read() == want.video.read()
            for record in entry.records:
                window = (record.clip.start, record.clip.end)
                assert torch.equal(decode_clip(entry.video, 4, *window), decode_clip(want.video, 4, *window))
    # commands that read videos by path extract a streamed source's videos too, keyed by its URLs
    url = f"pipe:cat {folder}/{{00000..00002}}.tar"
    extracted, again = extracted_records(url, tmp_path / "x"), extracted_records(url, tmp_path / "x")
    assert [record_fields(r) for r in extracted] == [record_fields(r) for e in local for r in e.records]
    assert [r.clip for r in again] == [r.clip for r in extracted]
    from_local = extracted_records(folder, tmp_path / "x")
    assert {r.clip.path for r in from_local}.isdisjoint(r.clip.path for r in extracted)  # another digest
    assert torch.equal(read_clip(extracted[0].clip.path, 4), read_clip(from_local[0].clip.path, 4))
    assert resolve_clip_source(url, num_frames=4).total == 4  # vljepa index build --videos 'pipe:...'


def test_a_failing_stream_is_an_error_naming_its_url(mixed_manifest, tmp_path, serve, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    write_shards(mixed_manifest, tmp_path, max_size=10**9, progress=False)
    shard = tmp_path / "00000.tar"
    with pytest.raises(ShardError, match=r"^pipe:false: reading the shard failed \(false exited with status 1\)"):
        list(source_entries("pipe:false"))
    missing = f"pipe:cat {tmp_path}/missing.tar"
    with pytest.raises(ShardError, match=f"^{missing}: reading the shard failed .* exited with status 1"):
        list(source_entries(missing))
    truncated = f"pipe:head -c 3000 {shard}"  # a command that succeeds with a cut tar
    with pytest.raises(ShardError, match=f"^{truncated}: not a readable tar stream"):
        list(source_entries(truncated))
    failing_late = f"pipe:cat {shard}; exit 3"  # the whole shard, then a failure: not taken as complete
    with pytest.raises(ShardError, match=r"exit 3: reading the shard failed .* exited with status 3"):
        list(source_entries(failing_late))
    not_found = f"{serve(tmp_path)}/00001.tar"
    with pytest.raises(ShardError, match=f"^{not_found}: reading the shard failed \\(curl exited with status 22\\)"):
        list(source_entries(not_found))
    with pytest.raises(ShardError, match="s3://bucket/0.tar: webdataset opens no s3:// URLs .*pipe:aws s3 cp"):
        shard_list("s3://bucket/{0..1}.tar")
    result = CliRunner().invoke(  # the command line keeps a URL whole (a Path would make it s3:/bucket)
        app, ["probe", "--train-manifest", "s3://bucket/{0..1}.tar", "--test-manifest", str(mixed_manifest)]
    )
    assert result.exit_code == 2 and "s3://bucket/0.tar: webdataset opens no s3:// URLs" in result.output
    with wds.TarWriter(str(tmp_path / "badrecord.tar")) as sink:
        sink.write({"__key__": "000000001", "mp4": b"x", "json": json.dumps({RECORDS_KEY: [{"caption": 3}]})})
    bad = f"pipe:cat {tmp_path}/badrecord.tar"
    with pytest.raises(ShardError, match=f'^{bad}: sample 000000001 record 0: "caption" must be a non-empty'):
        list(source_entries(bad))
    reader = read_shard(f"pipe:cat {shard}")  # a reader that stops early ends its command without an error
    assert next(reader).key == "000000000"
    reader.close()
