"""Hardware probes run in a child process, so a probe that crashes or hangs cannot take the run down.

A probe is a function of no arguments, named by its module and name, that returns JSON. It runs in a fresh
Python process with a time limit; a non-zero exit, a signal (e.g. SIGABRT from a compiler toolchain or a
stale inductor cache), a timeout or unreadable output becomes a `ProbeFailure` whose text says which.
Only the verdict comes back: the parent never runs the probed code itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

RESULT_MARKER = "VLJEPA-PROBE-RESULT "  # the child's one line of output the parent reads


class ProbeFailure(RuntimeError):
    """The probe's child process did not return a result: it failed, crashed or ran out of time."""


def _child_source(module: str, function: str) -> str:
    return (
        "import json, sys\n"
        f"from {module} import {function} as probe\n"
        f"sys.stdout.write({RESULT_MARKER!r} + json.dumps(probe()) + '\\n')\n"
    )


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def run_in_child(module: str, function: str, timeout: float) -> Any:
    """`module.function()` run in a child Python process; its JSON result, or `ProbeFailure` saying why not."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _child_source(module, function)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ProbeFailure(f"{module}.{function} did not finish within {timeout:.0f} s") from error
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        last_error = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise ProbeFailure(f"{module}.{function} failed ({_exit_description(done.returncode)}: {last_error})")
    return json.loads(lines[-1][len(RESULT_MARKER) :])
