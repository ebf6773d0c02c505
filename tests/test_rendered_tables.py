"""BENCHMARKS.md's rendered tables agree with the results files they are rendered from."""

from __future__ import annotations

import json
import re
from pathlib import Path

from encoder_probe_table import render

REPO = Path(__file__).resolve().parents[1]


def section(text: str, name: str) -> str:
    found = re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", text, re.S)
    assert found, f"BENCHMARKS.md has no <!-- {name} --> section"
    return found.group(1)


def test_encoder_probe_table_is_rendered_from_its_results():
    results = json.loads((REPO / "benchmarks/results/encoder_probes.json").read_text())
    assert section((REPO / "BENCHMARKS.md").read_text(), "encoder_probes") == render(results), (
        "re-render it: python benchmarks/encoder_probe_table.py render benchmarks/results/encoder_probes.json"
    )
