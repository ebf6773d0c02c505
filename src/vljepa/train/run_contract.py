"""What a run folder promises: its `train_config.json` is the config that ran, and a resume continues that run.

A run folder with a checkpoint holds a run under way (or finished). Starting a trainer on it again resumes it,
and the config given must be the one recorded, key for key (`resume_changes`). A difference is refused before
any work, with the differing keys listed, unless every change is safe and `allow_config_changes` is set:
- how often the run logs, evaluates and saves (`log_every`, `eval_every`, `save_every`), where it reports
  (`report_to`), where its feature cache lives (`cache_dir`) and the collapse warning's threshold;
- more steps for the stage under way, a later one, or the last stage of a finished run (the run's end keeps
  its AdamW state, schedule and batch position, so the extra steps continue that stage as if it had been
  given them): the stage's schedule is recomputed over the new length from the step reached, so the LR
  follows the new schedule from there on (a cosine that had reached 0 at the old end rises to where the
  longer cosine is at that step, then decays to 0 at the new end);
- stages added after the last one (a finished run continues with them).
Everything else (the model, the data, a finished stage's steps, learning rates, batch sizes, seeds, the
precision) would make the folder describe a run that did not happen, and is refused: start a new run, from
this one's weights with `init_from=<out_dir>/final` if wanted. Accepted changes are recorded in the
`history` of `train_config.json` with the position they took effect at, so the file says what ran when.
The precision resolved at the run's start is kept on resume: `bf16: auto` does not choose again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..config import RUN_CONFIG_FILE, TrainConfig, to_dict
from ..errors import ConfigError

SAFE_KEYS = ("log_every", "eval_every", "save_every", "report_to", "cache_dir", "collapse_threshold")
NOT_COMPARED = ("resolved", "history", "allow_config_changes")
STAGE_KEY = re.compile(r"stages\.(\d+)\.(.+)")


def flatten(value, prefix: str = "") -> dict[str, object]:
    """{"a.b.0": leaf} of nested dicts and lists."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat = {}
    for key, inner in items:
        flat.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def recorded_config(out_dir: Path) -> dict | None:
    path = Path(out_dir) / RUN_CONFIG_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _unsafe(key: str, saved_stages: int, position: dict, new_steps: dict[int, int]) -> str | None:
    """Why changing `key` is unsafe, or None if it is safe."""
    if key.split(".")[0] in SAFE_KEYS:
        return None
    match = STAGE_KEY.fullmatch(key)
    if match is None:
        return "it changes what the run is"
    index, field = int(match[1]), match[2]
    if index >= saved_stages:
        return None  # a stage added after the last one
    if field != "steps":
        return f"stage {index} has started" if index <= position["stage"] else f"stage {index}'s settings are the run's"
    if index < position["stage"]:
        return f"stage {index} has finished"
    if index == position["stage"] and new_steps[index] <= position["step"]:
        return f"stage {index} is at step {position['step']} already"
    return None


def resume_changes(saved: dict, config: TrainConfig, position: dict) -> dict[str, list]:
    """The changes `config` makes to the recorded run at `position` ({"stage", "step"}): {key: [old, new]},
    checked (see the module docstring); a `ConfigError` listing them when they may not be applied."""
    old = flatten({k: v for k, v in saved.items() if k not in NOT_COMPARED})
    as_recorded = json.loads(json.dumps(to_dict(config)))  # tuples as the JSON file holds them: lists
    new = flatten({k: v for k, v in as_recorded.items() if k not in NOT_COMPARED})
    changes = {
        key: [old.get(key), new.get(key)] for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)
    }
    if not changes:
        return {}
    saved_stages = len(saved.get("stages", []))
    if len(config.stages) < saved_stages:
        reasons = {"stages": f"the run has {saved_stages} stages; stages can be added, not removed"}
    else:
        steps = {i: stage.steps for i, stage in enumerate(config.stages)}
        reasons = {key: why for key in changes if (why := _unsafe(key, saved_stages, position, steps))}
    listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in list(changes.items())[:8])
    more = f" (and {len(changes) - 8} more)" if len(changes) > 8 else ""
    if reasons:
        why = "; ".join(f"{key} ({reason})" for key, reason in list(reasons.items())[:4])
        raise ConfigError(
            f"out_dir={config.out_dir}: holds a run with another config ({listed}{more}); these cannot change in a "
            f"run under way: {why}. Resume with the recorded config ({RUN_CONFIG_FILE}), or start a new run in "
            f"another out_dir (init_from=<this out_dir>/final starts from its weights)"
        )
    if not config.allow_config_changes:
        raise ConfigError(
            f"out_dir={config.out_dir}: holds a run with another config ({listed}{more}); these changes are safe: "
            f"set allow_config_changes=true to apply them (they are recorded in {RUN_CONFIG_FILE}'s history)"
        )
    return changes
