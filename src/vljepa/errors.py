"""The library's expected errors: input a user can fix. Each message names the file, key or field at fault.

The command line prints these as one line and exits with code 2 (a traceback only with `--debug`);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VljepaError(Exception):
    """An expected error whose message says what to fix."""


class ConfigError(VljepaError, ValueError):
    """A config value of the wrong type or out of range, or an unknown key; the message names its key path."""


class CheckpointError(VljepaError, ValueError):
    """A weight file that cannot be loaded into this model: damaged, or saved by another model."""


class OutputError(VljepaError, OSError):
    """A folder or file that must be written cannot be: read-only, not permitted, or the disk is full."""


class MissingExtraError(VljepaError, ImportError):
    """An optional feature whose packages are not installed; the message names the pip extra that installs them."""


def _missing(module: str, extra: str, feature: str, reason: str) -> MissingExtraError:
    return MissingExtraError(f'{feature} needs the {module} package ({reason}): pip install "vljepa[{extra}]"')


def require_extra(module: str, extra: str, feature: str):
    """`import module`, or a `MissingExtraError` saying `pip install "vljepa[extra]"` installs `feature`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise _missing(module, extra, feature, str(error)) from error


def check_extra(module: str, extra: str, feature: str) -> None:
    """`require_extra` without importing the module (a check before any work, not its use)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise _missing(module, extra, feature, "not installed")
