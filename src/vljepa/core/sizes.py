"""Sizes a person types (`1GB`, `500MB`, `2.5GB`, `64MiB`, `80GB`) as bytes, for any option that takes one."""

from __future__ import annotations

import re

from ..errors import ConfigError

SIZE_UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(text: str, option: str) -> int:
    """`1GB`, `500MB`, `2.5GB`, `64MiB` or a number of bytes -> bytes (KB/MB/GB are powers of 1000, KiB/MiB/GiB of
    1024); a `ConfigError` naming `option` otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in SIZE_UNITS or float(match.group(1)) <= 0:
        raise ConfigError(f"{option}: expected a size such as 1GB, 500MB or 24GiB, got {text!r}")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).upper()])
