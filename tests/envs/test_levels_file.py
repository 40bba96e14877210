"""A user's own levels: the JSON format round-trips, plays exactly as written, and a malformed
file is refused naming the level and the field."""

import copy
import json
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from lpgx.compose import TrainConfig, build_trainer
from lpgx.envs import LevelsFile, get_level_set, optimal_return, write_levels

GOOD = {
    "format": "lpgx-levels/1",
    "tabular": True,
    "levels": [
        {
            "name": "corner",
            "size": 4,
            "walls": [[1, 1], [1, 2]],
            "start": [0, 0],
            "objects": [{"type": 0, "cell": [3, 3]}],
            "types": [{"reward": 1.0, "p_terminate": 1.0, "p_respawn": 0.0}],
            "max_steps": 20,
            "lifetime": 8,
        },
        {
            "name": "two",
            "size": 5,
            "start": [2, 2],
            "objects": [{"type": 0, "cell": [0, 0]}, {"type": 1, "cell": [4, 4]}],
            "types": [
                {"reward": 1.0, "p_terminate": 0.0, "p_respawn": 0.5},
                {"reward": -1.0, "p_terminate": 0.0, "p_respawn": 0.5},
            ],
            "max_steps": 30,
            "lifetime": 12,
        },
    ],
}


def _write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "levels.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_levels_play_as_written_with_their_optimum(tmp_path: Path) -> None:
    levels = LevelsFile(_write(tmp_path, GOOD))
    assert levels.names == ("corner", "two")
    assert (levels.max_lifetime, levels.eval_steps) == (12, 30)
    env = levels.env()
    corner = levels.task(0)
    # The corner level: 6 steps around the wall to the goal at (3, 3), which ends the episode.
    assert optimal_return(env, corner.level) == pytest.approx(1.0)
    state, _ = env.reset(jax.random.key(0), corner.level)
    assert int(state.pos) == 0 and int(corner.lifetime) == 8
    assert int(corner.level.obj_pos[0]) == 3 * 4 + 3  # cells are row * size + col


def test_built_in_levels_round_trip(tmp_path: Path) -> None:
    source = get_level_set("tabular")
    tasks = [(f"t{i}", source.sample(jax.random.key(i))) for i in range(3)]
    path = write_levels(tmp_path / "tabular.json", tasks)
    levels = LevelsFile(str(path))
    env = levels.env()
    for i, (_, task) in enumerate(tasks):
        got = levels.task(i)
        assert int(got.lifetime) == int(task.lifetime)
        np.testing.assert_allclose(
            optimal_return(env, got.level), optimal_return(source.env(), task.level), rtol=1e-6
        )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["levels"][0]["walls"].append([4, 0]), r"level 0 \(corner\): walls\[2\]"),
        (
            lambda d: d["levels"][1]["objects"].append({"type": 0, "cell": [2, 2]}) or None,
            None,
        ),
        (
            lambda d: d["levels"][0]["objects"].append({"type": 0, "cell": [1, 1]}),
            r"level 0 \(corner\): objects\[1\].cell \[1, 1\] is a wall",
        ),
        (
            lambda d: d["levels"][1]["types"][1].update(p_respawn=1.5),
            r"level 1 \(two\): types\[1\].p_respawn must lie in \[0, 1\]",
        ),
        (lambda d: d["levels"][0].pop("lifetime"), r"level 0 \(corner\): field 'lifetime'"),
        (lambda d: d.update(format="other"), "format"),
    ],
)
def test_malformed_files_name_the_level_and_field(
    tmp_path: Path, edit: object, message: str | None
) -> None:
    data = copy.deepcopy(GOOD)
    edit(data)  # type: ignore[operator]
    if message is None:  # an object on the start cell is allowed (it is collected at once)
        LevelsFile(_write(tmp_path, data))
        return
    with pytest.raises(ValueError, match=message):
        LevelsFile(_write(tmp_path, data))


def test_a_levels_file_is_an_env_mode(tmp_path: Path) -> None:
    config = TrainConfig(
        env_mode=_write(tmp_path, GOOD),
        num_agents=2,
        num_mini_batches=1,
        env_workers=2,
        train_rollout_len=4,
        num_agent_updates=1,
        lpg_gru_width=8,
        lpg_target_width=4,
        train_steps=2,
        chunk_size=2,
    )
    trainer = build_trainer(config)
    state, metrics = eqx.filter_jit(trainer.run_chunk)(trainer.init())
    assert int(state.step) == 2 and np.isfinite(np.asarray(metrics["meta_grad_norm"])).all()
