"""lpgx's default XLA flags (`lpgx._xla`): added before a backend starts, never over the user's
own options, off with ``LPGX_XLA_DEFAULTS=0``; and a loop compiled with them gives the results
it gives without them."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lpgx import _xla


@pytest.fixture
def no_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_xla, "_backends_initialised", lambda: False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("LPGX_XLA_DEFAULTS", raising=False)


@pytest.mark.usefixtures("no_backend")
def test_the_defaults_are_added_once_and_keep_other_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    assert _xla.apply_defaults() == _xla.default_flags()
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == ["--xla_force_host_platform_device_count=2", *_xla.default_flags()]
    assert _xla.apply_defaults() == ()  # already there: not added twice


@pytest.mark.usefixtures("no_backend")
def test_the_users_own_backend_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling")
    assert _xla.apply_defaults() == ()
    assert os.environ["XLA_FLAGS"] == "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling"


@pytest.mark.usefixtures("no_backend")
def test_off_when_asked_or_too_late(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPGX_XLA_DEFAULTS", "0")
    assert _xla.apply_defaults() == () and "XLA_FLAGS" not in os.environ
    monkeypatch.delenv("LPGX_XLA_DEFAULTS")
    monkeypatch.setattr(_xla, "_backends_initialised", lambda: True)
    assert _xla.apply_defaults() == () and "XLA_FLAGS" not in os.environ


_GRID_WORLD = """
import sys
import jax, jax.numpy as jnp, numpy as np
from lpgx.compose import make_tasks

tasks = make_tasks("all_shortlife")
env = tasks.env()
n = 4

def run(key):
    k_levels, k_reset, k_run = jax.random.split(key, 3)
    levels = jax.vmap(tasks.sample)(jax.random.split(k_levels, n)).level
    state, obs = jax.vmap(env.reset)(jax.random.split(k_reset, n), levels)

    def body(state, key):
        k_action, k_step = jax.random.split(key)
        actions = jax.random.randint(k_action, (n,), 0, env.num_actions, dtype=jnp.int32)
        step = jax.vmap(env.step)
        state, obs, reward, done = step(jax.random.split(k_step, n), levels, state, actions)
        return state, (obs, reward, done)

    return jax.lax.scan(body, state, jax.random.split(k_run, 200))[1]

compiled = jax.jit(run).lower(jax.random.key(3)).compile()
out = compiled(jax.random.key(3))
print("one kernel" if "xla_cpu_small_call" in compiled.as_text() else "kernels", flush=True)
flat = [np.ravel(np.asarray(x)).astype(np.float64) for x in jax.tree.leaves(out)]
np.save(sys.argv[1], np.concatenate(flat))
"""


def test_a_small_loop_gives_the_same_results_as_one_kernel(
    tmp_path: Path,
) -> None:
    """200 steps of 4 grid worlds in a scan (small enough to become one kernel with the
    defaults): observations, rewards and ends equal to the last bit with the defaults off."""
    outs = []
    for setting in ("1", "0"):
        path = tmp_path / f"{setting}.npy"
        env = {**os.environ, "LPGX_XLA_DEFAULTS": setting}
        env.pop("XLA_FLAGS", None)
        proc = subprocess.run(
            [sys.executable, "-c", _GRID_WORLD, str(path)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().splitlines()[-1] == (
            "one kernel" if setting == "1" else "kernels"
        )
        outs.append(np.load(path))
    np.testing.assert_array_equal(outs[0], outs[1])
