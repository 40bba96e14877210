"""Compiled programs kept on disk (`lpgx._executables`): a second start loads them without
tracing, gives the same outputs, and a different program never gets another's entry; `train`
keeps them only when asked (the ``lpgx`` command asks); where JAX's private API has moved
(`lpgx._jax_private`), programs are compiled as usual."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lpgx.train
from lpgx import _jax_private
from lpgx._executables import Program, compile_cached
from lpgx.compose import TrainConfig

TRACES: list[str] = []


class Stepper(eqx.Module):
    """A function holding arrays and a static function, returning a state with a static leaf
    and a dict of metrics: the shapes of what `lpgx train` compiles."""

    scale: jax.Array
    activation: object = eqx.field(static=True)

    def __call__(self, state: dict[str, object]) -> tuple[dict[str, object], dict[str, jax.Array]]:
        TRACES.append("traced")
        x = state["x"]
        assert isinstance(x, jax.Array)
        # A QR too: LAPACK's kernels must be bound again in a process that loads the program.
        y = self.activation(x * self.scale) + jnp.linalg.qr(jnp.eye(2) + x[0])[0][0, 0]
        return {"x": y, "name": state["name"]}, {"sum": y.sum(), "max": y.max()}


def _compile(
    stepper: Stepper, state: dict[str, object], cache: Path, salt: str = "s", **options: Any
) -> Program:
    return compile_cached(
        "step",
        salt,
        stepper,
        (state,),
        out_structure=lambda d: (state, dict.fromkeys(d["metrics"], state["x"])),
        describe=lambda out: {"metrics": sorted(out[1])},
        cache=cache,
        **options,
    )


def test_a_second_compilation_loads_without_tracing(tmp_path: Path) -> None:
    stepper = Stepper(jnp.asarray(2.0), jax.nn.relu)
    state: dict[str, object] = {"x": jnp.arange(3.0) - 1.0, "name": "agent"}
    TRACES.clear()
    first = _compile(stepper, state, tmp_path)
    assert TRACES == ["traced"] and len(list(tmp_path.glob("step-*.bin"))) == 1
    assert not first.loaded  # pyright: ignore[reportAttributeAccessIssue]
    out = first(state)  # pyright: ignore[reportCallIssue]
    again = _compile(stepper, state, tmp_path)
    assert TRACES == ["traced"], "a hit must not trace the function"
    assert again.loaded  # pyright: ignore[reportAttributeAccessIssue]
    out_again = again({"x": state["x"], "name": "agent"})  # pyright: ignore[reportCallIssue]
    assert out_again[0]["name"] == "agent" and sorted(out_again[1]) == ["max", "sum"]
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(out_again), strict=True):
        np.testing.assert_array_equal(a, b)
    # New argument values, same program: still no trace, and the values are used.
    moved = again({"x": state["x"] + 1.0, "name": "agent"})  # pyright: ignore[reportCallIssue]
    assert TRACES == ["traced"] and float(moved[1]["sum"]) != float(out[1]["sum"])


def test_the_hook_comes_once_after_tracing_and_the_entry_is_written_beside_the_run(
    tmp_path: Path,
) -> None:
    """`lpgx train` traces its initialiser once the chunk's hook says the chunk is traced, and
    lets the chunk's entry be written while the first chunk runs."""
    stepper = Stepper(jnp.asarray(2.0), jax.nn.relu)
    state: dict[str, object] = {"x": jnp.arange(3.0) - 1.0, "name": "agent"}
    TRACES.clear()
    hooked: list[object] = []
    first = _compile(
        stepper,
        state,
        tmp_path,
        traced_hook=lambda: hooked.append(len(TRACES)),
        write_in_background=True,
    )
    out = first(state)  # runs while the entry may still be being written
    first.wait_written()
    assert hooked == [1], "once, after the trace"
    assert first.writing is not None and not first.writing.is_alive()
    assert len(list(tmp_path.glob("step-*.bin"))) == 1
    # A hit calls the hook once too (before loading), and traces nothing.
    again = _compile(stepper, state, tmp_path, traced_hook=lambda: hooked.append("hit"))
    assert hooked == [1, "hit"] and again.loaded and TRACES == ["traced"]
    np.testing.assert_array_equal(again(state)[0]["x"], out[0]["x"])


def test_another_program_never_gets_an_entry_that_is_not_its_own(tmp_path: Path) -> None:
    state: dict[str, object] = {"x": jnp.arange(3.0), "name": "agent"}
    relu, tanh = Stepper(jnp.asarray(2.0), jax.nn.relu), Stepper(jnp.asarray(2.0), jnp.tanh)
    TRACES.clear()
    _compile(relu, state, tmp_path)
    _compile(tanh, state, tmp_path)  # another static function
    _compile(relu, state, tmp_path, salt="other config")
    _compile(relu, {"x": jnp.arange(4.0), "name": "agent"}, tmp_path)  # another shape
    three = Stepper(jnp.asarray(3.0), jax.nn.relu)
    held = _compile(three, state, tmp_path)  # the values the function holds
    assert len(TRACES) == 5 and len(list(tmp_path.glob("step-*.bin"))) == 5
    got = held(state)[0]["x"]  # pyright: ignore[reportCallIssue]
    np.testing.assert_allclose(got, three(state)[0]["x"], rtol=1e-6)  # pyright: ignore[reportArgumentType]


def test_a_damaged_entry_is_compiled_again(tmp_path: Path) -> None:
    stepper = Stepper(jnp.asarray(2.0), jax.nn.relu)
    state: dict[str, object] = {"x": jnp.arange(3.0), "name": "agent"}
    expected = _compile(stepper, state, tmp_path)(state)  # pyright: ignore[reportCallIssue]
    (entry,) = tmp_path.glob("step-*.bin")
    entry.write_bytes(entry.read_bytes()[:100])
    TRACES.clear()
    got = _compile(stepper, state, tmp_path)(state)  # pyright: ignore[reportCallIssue]
    assert TRACES == ["traced"]
    np.testing.assert_array_equal(got[0]["x"], expected[0]["x"])
    assert entry.stat().st_size > 100  # rewritten whole


@pytest.mark.slow
def test_lpgx_train_starts_again_from_its_kept_programs(tmp_path: Path) -> None:
    """Two `lpgx train` processes with the cache on: the second loads both programs (the
    initialiser, with LAPACK's QR, and the chunk) and writes the same metrics."""
    flags = ["--env-mode", "dense", "--num-agents", "2", "--num-mini-batches", "1"]
    flags += ["--env-workers", "2", "--train-rollout-len", "4", "--num-agent-updates", "1"]
    flags += ["--lpg-gru-width", "8", "--lpg-target-width", "4", "--train-steps", "2"]
    flags += ["--chunk-size", "2", "--no-evaluate"]
    env = {**os.environ, "LPGX_COMPILE_CACHE": "1", "LPGX_COMPILE_CACHE_DIR": str(tmp_path / "c")}
    metrics = []
    for name in ("first", "second"):
        out = tmp_path / name
        cmd = [sys.executable, "-m", "lpgx_cli.main", "train", *flags, "--out", str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        loaded = "loaded from the cache" in " ".join((proc.stdout + proc.stderr).split())
        assert loaded == (name == "second")
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        for r in records:
            r.pop("wall_s")
        metrics.append(records)
    kept = sorted(p.name.split("-")[0] for p in (tmp_path / "c" / "lpgx-executables").glob("*.bin"))
    assert kept == ["chunk", "init"]
    # Kept by lpgx, they are not written to JAX's own cache too (its entries of the small
    # programs around them are).
    assert not list((tmp_path / "c").glob("jit_flat-*")), sorted((tmp_path / "c").iterdir())
    assert metrics[0] == metrics[1]


def test_a_program_compiled_for_shapes_runs_on_the_arrays_that_come_later(tmp_path: Path) -> None:
    """`lpgx train` compiles its chunk for the initial state's shapes and placement while that
    state is computed: the program must equal the one compiled for the arrays, with or without
    the cache."""
    stepper = Stepper(jnp.asarray(2.0), jax.nn.relu)
    state: dict[str, object] = {"x": jnp.arange(3.0) - 1.0, "name": "agent"}
    shapes = {"x": jax.ShapeDtypeStruct((3,), jnp.float32), "name": "agent"}
    expected = _compile(stepper, state, tmp_path / "arrays")(state)  # pyright: ignore[reportCallIssue]
    for cache in (None, tmp_path / "shapes"):
        got = compile_cached(
            "step",
            "s",
            stepper,
            (shapes,),
            out_structure=lambda d: (shapes, dict.fromkeys(d["metrics"], shapes["x"])),
            describe=lambda out: {"metrics": sorted(out[1])},
            cache=cache,
        )(state)  # pyright: ignore[reportCallIssue]
        assert got[0]["name"] == "agent" and sorted(got[1]) == ["max", "sum"]
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
            np.testing.assert_array_equal(a, b)


def test_where_jaxs_private_api_moved_programs_are_compiled_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jax._src import config as jax_config
    from jax._src.lax import linalg

    stepper = Stepper(jnp.asarray(2.0), jax.nn.relu)
    state: dict[str, object] = {"x": jnp.arange(3.0), "name": "agent"}
    expected = _compile(stepper, state, tmp_path / "a")(state)  # pyright: ignore[reportCallIssue]
    # LAPACK's kernels cannot be bound again: the entry (which needs them) is compiled again.
    with monkeypatch.context() as m:
        m.delattr(linalg, "initialize_lapack")
        assert not _jax_private.initialize_lapack()
        TRACES.clear()
        got = _compile(stepper, state, tmp_path / "a")
        assert TRACES == ["traced"] and not got.loaded
        np.testing.assert_array_equal(got(state)[0]["x"], expected[0]["x"])  # pyright: ignore[reportCallIssue]
    # The devices of a compiled program cannot be read: no entry is written.
    assert _jax_private.executable_device_ids(object()) is None
    with monkeypatch.context() as m:
        m.setattr(_jax_private, "executable_device_ids", lambda compiled: None)
        got = _compile(stepper, state, tmp_path / "b")
        assert not list((tmp_path / "b").glob("step-*"))
        np.testing.assert_array_equal(got(state)[0]["x"], expected[0]["x"])  # pyright: ignore[reportCallIssue]
    # JAX's cache cannot be told to skip its write: then it writes (a plain context).
    with monkeypatch.context() as m:
        m.delattr(jax_config, "persistent_cache_min_compile_time_secs")
        assert isinstance(_jax_private.without_persistent_cache_write(), contextlib.nullcontext)


def test_train_keeps_programs_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library caller of `train` gets no cache of compiled programs unless it passes
    ``executable_cache=True``, even where JAX's persistent cache is on (here: a directory of the
    test's stands in for it). ``lpgx train`` passes it:
    `test_lpgx_train_starts_again_from_its_kept_programs`."""
    kept = tmp_path / "kept"
    monkeypatch.setattr(lpgx.train, "executable_cache_dir", lambda: kept)
    caches: list[Path | None] = []

    def spy(*args: Any, **kwargs: Any) -> Program:
        caches.append(kwargs["cache"])
        return compile_cached(*args, **kwargs)

    monkeypatch.setattr(lpgx.train, "compile_cached", spy)
    config = TrainConfig(
        env_mode="dense",
        train_steps=1,
        num_agents=1,
        num_mini_batches=1,
        env_workers=1,
        train_rollout_len=2,
        num_agent_updates=1,
        lpg_gru_width=4,
        lpg_target_width=2,
        chunk_size=1,
    )
    lpgx.train.train(config, tmp_path / "plain", evaluate=False)
    assert caches == [None] and not kept.exists()
