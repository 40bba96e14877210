"""Checkpoints: Equinox leaf serialisation plus JSON metadata, written atomically.

A checkpoint of step ``n`` is ``ckpt/step_{n:08d}.eqx`` (the state's array leaves) and
``ckpt/step_{n:08d}.json`` (config, step, library versions and a fingerprint of the state's
structure). The JSON is written last, so a checkpoint without it is incomplete and ignored; both
files go through a temporary name and `os.replace`, so a crash never leaves a half-written file
under a checkpoint's name.
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

import equinox as eqx
import jax

__all__ = [
    "atomic_write",
    "checkpoint_paths",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "structure_fingerprint",
]

_SUFFIX = ".eqx"


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write `path` through a temporary file in the same directory and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def structure_fingerprint(tree: Any) -> str:
    """A hash of a pytree's structure, shapes and dtypes (not its values)."""
    leaves, treedef = jax.tree.flatten(tree)
    desc = [str(treedef)] + [
        f"{getattr(x, 'shape', ())}:{getattr(x, 'dtype', type(x))}" for x in leaves
    ]
    return hashlib.sha256("\n".join(desc).encode()).hexdigest()[:16]


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("lpgx", "jax", "jaxlib", "equinox", "optax", "evosax"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def checkpoint_paths(run_dir: Path, step: int) -> tuple[Path, Path]:
    stem = run_dir / "ckpt" / f"step_{step:08d}"
    return stem.with_suffix(_SUFFIX), stem.with_suffix(".json")


def save_checkpoint(
    run_dir: Path, step: int, state: Any, metadata: dict[str, Any], keep: int = 3
) -> Path:
    """Write the checkpoint of `step` atomically and keep only the newest `keep` of them."""
    leaves_path, meta_path = checkpoint_paths(run_dir, step)
    atomic_write(leaves_path, lambda f: eqx.tree_serialise_leaves(f, state))
    meta = {
        **metadata,
        "step": step,
        "fingerprint": structure_fingerprint(state),
        "sha256": _file_digest(leaves_path),
        "versions": _versions(),
    }
    atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=2).encode()))
    for old in _complete_steps(run_dir)[:-keep]:
        for p in checkpoint_paths(run_dir, old):
            p.unlink(missing_ok=True)
    return leaves_path


def _complete_steps(run_dir: Path) -> list[int]:
    ckpt = run_dir / "ckpt"
    if not ckpt.is_dir():
        return []
    steps = []
    for meta in ckpt.glob("step_*.json"):
        step = int(meta.stem.removeprefix("step_"))
        if checkpoint_paths(run_dir, step)[0].exists():
            steps.append(step)
    return sorted(steps)


def latest_checkpoint(run_dir: Path) -> int | None:
    """The step of the newest complete checkpoint in `run_dir`, or None."""
    steps = _complete_steps(run_dir)
    return steps[-1] if steps else None


def load_checkpoint(run_dir: Path, step: int, like: Any) -> tuple[Any, dict[str, Any]]:
    """Read the checkpoint of `step` into a pytree shaped like `like`.

    Raises `ValueError` naming the fix when the checkpoint belongs to a differently shaped
    state (another config) or cannot be read (corrupted).
    """
    leaves_path, meta_path = checkpoint_paths(run_dir, step)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(
            f"checkpoint metadata {meta_path} is unreadable ({e}); delete {meta_path} and "
            f"{leaves_path} to resume from the previous checkpoint."
        ) from e
    expected = structure_fingerprint(like)
    if meta.get("fingerprint") != expected:
        raise ValueError(
            f"checkpoint {leaves_path} was written by a run with a different configuration "
            f"(state fingerprint {meta.get('fingerprint')} != {expected}); resume it with the "
            "config in its run directory's config.json, or start a new run with --out."
        )
    fix = "delete it and its .json to resume from the previous checkpoint."
    if not leaves_path.exists() or _file_digest(leaves_path) != meta.get("sha256"):
        raise ValueError(
            f"checkpoint {leaves_path} is missing or corrupted (checksum mismatch); {fix}"
        )
    try:
        state = eqx.tree_deserialise_leaves(leaves_path, like)
    except Exception as e:
        raise ValueError(
            f"checkpoint {leaves_path} is corrupted ({type(e).__name__}: {e}); {fix}"
        ) from e
    return state, meta
