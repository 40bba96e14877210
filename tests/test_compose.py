"""The composition layer: every setting of every component is a flag of `lpgx train`, listed
in its help, and a wrong value is rejected before anything compiles, naming the flag."""

import dataclasses
import time

import pytest

from lpgx import compose
from lpgx.compose import TrainConfig
from lpgx.curriculum import PLR, Frozen
from lpgx.lifetime import AgentConfig
from lpgx.meta import ESConfig, MetaGradientConfig
from lpgx.mgrl import OnlineConfig, OnlineTrainer
from lpgx.rules import A2CConfig, LPGConfig
from lpgx_cli.main import main as cli

FLAG_NAMES = {f.name for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize(
    ("component", "settings", "flags"),
    [
        ("agent", {f.name for f in dataclasses.fields(AgentConfig)}, compose.AGENT_FLAGS),
        ("lpg", {f.name for f in dataclasses.fields(LPGConfig)}, compose.LPG_FLAGS),
        ("a2c", {f.name for f in dataclasses.fields(A2CConfig)}, compose.A2C_FLAGS),
        (
            "meta_gradient",
            {f.name for f in dataclasses.fields(MetaGradientConfig)},
            compose.META_GRADIENT_FLAGS,
        ),
        ("es", {f.name for f in dataclasses.fields(ESConfig)}, compose.ES_FLAGS),
        (
            "plr",
            {f.name for f in dataclasses.fields(PLR)} - {"levels", "scorer"},
            compose.PLR_FLAGS,
        ),
        ("frozen", {f.name for f in dataclasses.fields(Frozen)} - {"levels"}, compose.FROZEN_FLAGS),
        ("mgrl", {f.name for f in dataclasses.fields(OnlineConfig)}, compose.MGRL_FLAGS),
    ],
)
def test_every_setting_of_every_component_has_a_flag(
    component: str, settings: set[str], flags: dict[str, str]
) -> None:
    assert set(flags) == settings, f"{component}: settings without a flag"
    assert set(flags.values()) <= FLAG_NAMES, f"{component}: flags TrainConfig lacks"


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["train", "--help"]) == 0
    text = capsys.readouterr().out
    missing = [n for n in sorted(FLAG_NAMES) if f"--{n.replace('_', '-')}" not in text]
    assert not missing, f"not in `lpgx train --help`: {missing}"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--use-es", "--es-b1", "1.5"], ["b1 must lie in [0, 1)", "--es-b1"]),
        (["--use-es", "--es-sigma-limit", "0"], ["sigma_init and sigma_limit", "--es-sigma-limit"]),
        (["--lpg-gru-width", "0"], ["at least 1", "--lpg-gru-width"]),
        (["--agent-policy-lr", "-1"], ["policy_lr must be positive", "--agent-policy-lr"]),
        (["--num-agents", "6", "--num-mini-batches", "4"], ["not divisible", "--num-mini-batches"]),
        (["--score-function", "regret"], ["unknown --score-function", "alg_regret"]),
        (["--rule", "a2c"], ["no meta-parameters", "--rule lpg"]),
        (["--env-mode", "nowhere"], ["unknown --env-mode", "all_shortlife"]),
        (["--score-function", "pvl", "--use-es"], ["value critics", "alg_regret"]),
        (["--seeds", "3"], ["--seeds and --env-steps apply to online runs", "--preset mgrl"]),
        (["--preset", "mgrl", "--env-mode", "minatar:pong"], ["unknown MinAtar game", "breakout"]),
        (["--preset", "mgrl", "--env-mode", "tabular"], ["online runs", "minatar:NAME"]),
        (["--env-mode", "atari:Qbert"], ["runs only online", "--preset mgrl"]),
        (["--preset", "mgrl", "--agent-policy-lr", "0"], ["learning_rate", "--agent-policy-lr"]),
    ],
)
def test_a_wrong_value_is_rejected_before_compiling(
    flags: list[str], expected: list[str], tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    rc = cli(["train", *flags, "--out", f"{tmp_path}/run"])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert rc == 2, err
    for text in expected:
        assert text in err, err
    assert err.count("error") == 1, err  # rejected once
    assert time.perf_counter() - start < 30  # nothing was compiled


def test_presets_build() -> None:
    for _, config in compose.PRESETS.values():
        trainer = compose.build(config)
        if isinstance(trainer, OnlineTrainer):
            # 1 M environment steps in windows of 3 updates on 64 environments × 5 steps.
            assert trainer.train_steps == -(-1_000_000 // 960)
            assert trainer.config.meta_learn == (config.mgrl_meta_learn)
        else:
            assert trainer.num_agents == config.num_agents
