"""The results tables of README.md, BENCHMARKS.md and docs/*.md agree with the results files they are rendered
from by `benchmarks/render_docs.py`: every `<!-- render: NAME -->` section equals what its template renders now,
a page with one stale figure is reported by file and section (and rewritten by the renderer), and every
section has a template and every template a section."""

from __future__ import annotations

from pathlib import Path

from render_contexts import CONTEXTS
from render_docs import main, pages, rerendered, sections, template_names

README = Path(__file__).resolve().parents[1] / "README.md"


def stale_readme(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the README whose first rendered figure is changed by a tenth of a point, and the original."""
    text = README.read_text()
    section = next(found for found in sections(text) if found["name"] == "demo_results")
    body = section["body"].replace("99.5%", "99.4%", 1)
    assert body != section["body"], "the README's demo table no longer shows 99.5%"
    page = tmp_path / "README.md"
    page.write_text(text[: section.start("body")] + body + text[section.end("body") :])
    return page, text


def test_every_rendered_section_equals_what_its_results_render_now():
    stale = [section for page in pages() for section in rerendered(page)[1]]
    assert not stale, "stale, re-render with python benchmarks/render_docs.py:\n" + "\n".join(s.diff for s in stale)


def test_a_stale_figure_is_reported_with_its_file_and_section(tmp_path, capsys):
    page, _ = stale_readme(tmp_path)
    before = page.read_text()
    assert main(["--check", str(page)]) == 1
    report = capsys.readouterr().out
    assert f"{page.resolve()}: section demo_results differs" in report
    assert "-| zero-shot action classification top-1 (12 classes) | 99.4%" in report
    assert page.read_text() == before, "--check wrote the page"


def test_rendering_a_stale_page_restores_its_figures(tmp_path, capsys):
    page, original = stale_readme(tmp_path)
    assert main([str(page)]) == 0
    assert page.read_text() == original


def test_every_section_marker_has_a_template_and_every_template_a_marker_and_a_context():
    marked = {section["name"] for page in pages() for section in sections(page.read_text())}
    assert marked - template_names() == set(), "sections without a template in benchmarks/templates"
    assert template_names() - marked == set(), "templates that no page renders"
    assert set(CONTEXTS) == template_names(), "a template without its context in render_contexts.py, or the reverse"
