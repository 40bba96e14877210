"""`lpgx train --debug`: the meta-step without compilation and with NaN checks gives the
compiled run's metrics, and a NaN raises where it is made."""

import dataclasses
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpgx.compose import build_trainer
from lpgx.run_dir import RunDir
from lpgx.train import train
from lpgx_cli.main import main as cli

from .test_train import TINY

# One meta-step of one mini-batch and one agent update: executed op by op, so kept minimal.
ONE_STEP = dataclasses.replace(
    TINY, train_steps=1, chunk_size=1, num_mini_batches=1, num_agent_updates=1
)


@pytest.mark.slow
def test_debug_first_step_equals_the_compiled_one(tmp_path: Path) -> None:
    train(ONE_STEP, tmp_path / "compiled", evaluate=False)
    train(ONE_STEP, tmp_path / "debug", evaluate=False, debug=True)
    (compiled,) = RunDir(tmp_path / "compiled").read_metrics()
    (debug,) = RunDir(tmp_path / "debug").read_metrics()
    compiled.pop("wall_s"), debug.pop("wall_s")
    assert sorted(compiled) == sorted(debug)
    for name, value in compiled.items():
        # Op-by-op execution skips XLA's fusions: equal up to float32 reassociation.
        np.testing.assert_allclose(debug[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


def test_debug_raises_at_the_first_nan() -> None:
    from lpgx.train import _run_uncompiled

    trainer = build_trainer(ONE_STEP)
    state = trainer.init()
    poisoned = jax.tree.map(
        lambda x: jnp.full_like(x, jnp.nan) if eqx.is_inexact_array(x) else x, state.meta.rule
    )
    state = eqx.tree_at(lambda s: s.meta.rule, state, poisoned)
    with pytest.raises(FloatingPointError, match="nan"):
        _run_uncompiled(trainer, state)


def test_cli_has_a_debug_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["train", "--help"]) == 0
    assert "--debug" in capsys.readouterr().out
