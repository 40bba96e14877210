"""A run directory's ``config.json``, read back: the `TrainConfig` of a run, with errors that
name the file, the field and the fix. Below `lpgx.train` (which writes it) so that meta-testing,
plotting and the CLI read runs without importing the training loop."""

import dataclasses
import json
from pathlib import Path
from typing import Any

from .compose import TrainConfig

__all__ = ["load_config", "read_config"]


def _config_fix(path: Path) -> str:
    ckpt = path.parent / "ckpt"
    return (
        f"restore it from a copy (every checkpoint's .json in {ckpt} holds the run's config "
        'under "config"), or start a new run with another --out'
    )


def read_config(path: Path) -> dict[str, Any]:
    """The config saved in a run directory's ``config.json``, with a clear error naming the
    file (and the fix) if it is not a readable JSON object."""
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); {_config_fix(path)}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a text file ({e}); {_config_fix(path)}") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} holds a JSON {type(values).__name__}, not a config object; {_config_fix(path)}"
        )
    return values


def load_config(path: Path) -> TrainConfig:
    """The `TrainConfig` saved in a run directory's ``config.json``.

    **Raises:** `ValueError` naming the file, the field and the fix when the file is not JSON,
    has a field this version of lpgx does not know, a value of the wrong type, or a value the
    config rejects.
    """
    from beartype.door import is_bearable

    values = read_config(path)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"{path} has fields this version of lpgx does not know: {', '.join(unknown)}; "
            f"remove them, or {_config_fix(path)}"
        )
    fixed: dict[str, Any] = {}
    for name, raw in values.items():
        hint: Any = fields[name].type
        value: Any = tuple(raw) if isinstance(raw, list) else raw
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if is_int and not is_bearable(value, hint) and is_bearable(float(value), hint):
            value = float(value)  # JSON writes 1.0 as 1 when edited by hand: an int is a float
        if not is_bearable(value, hint):
            kind = getattr(hint, "__name__", hint)
            raise ValueError(
                f"{path}: {name} = {raw!r} is not a valid {kind}; correct it "
                f"(the default is {getattr(TrainConfig(), name)!r}), or {_config_fix(path)}"
            )
        fixed[name] = value
    try:
        return TrainConfig.from_dict(fixed)
    except ValueError as e:
        raise ValueError(f"{path}: {e}; correct it, or {_config_fix(path)}") from None
