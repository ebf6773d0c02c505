"""The documentation holds together: a short README that links every page of docs/, a section in
docs/commands.md for every `vljepa` command, and relative links and images that point at files."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from vljepa.cli import app

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def command_names() -> set[str]:
    """The top-level commands and command groups of the `vljepa` app, named as `vljepa --help` names them."""
    commands = {
        command.name or typer.main.get_command_name(command.callback.__name__) for command in app.registered_commands
    }
    groups = {group.name for group in app.registered_groups}
    return commands | groups


def relative_targets(page: Path) -> list[str]:
    """The relative link and image targets of a markdown page outside code blocks, without #anchors."""
    targets = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http(s), mailto: and the like, or an anchor on the same page
        targets.append(target.split("#", 1)[0])
    return targets


def test_the_readme_is_at_most_220_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= 220, f"README.md has {lines} lines; move reference material into docs/"


def test_the_command_names_match_what_vljepa_help_shows():
    assert command_names() == set(typer.main.get_command(app).commands)


def test_every_command_has_a_section_in_the_commands_page():
    headings = set(re.findall(r"^### vljepa (\S+)\s*$", (REPO / "docs/commands.md").read_text(), re.M))
    missing = sorted(command_names() - headings)
    assert not missing, f"docs/commands.md has no '### vljepa NAME' heading for: {', '.join(missing)}"


def test_every_relative_link_and_image_points_at_an_existing_file():
    broken = [
        f"{page.relative_to(REPO)}: {target}"
        for page in [README, *DOCS]
        for target in relative_targets(page)
        if not (page.parent / target).exists()
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_links_every_docs_page():
    linked = {(README.parent / target).resolve() for target in relative_targets(README)}
    unlinked = [page.name for page in DOCS if page.resolve() not in linked]
    assert DOCS, "docs/ has no pages"
    assert not unlinked, f"README.md does not link: {', '.join(unlinked)}"
