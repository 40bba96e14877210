"""Atari through ale-py's vector environment (the ``atari`` extra): raw game scores beside
sign-clipped rewards, episodic life, and an online run from the command line."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpgx.mgrl import ATARI_EXTRA, AtariVec, ale_available
from lpgx_cli.main import main as cli

needs_ale = pytest.mark.skipif(not ale_available(), reason=ATARI_EXTRA)


def test_without_the_extra_atari_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import lpgx.mgrl._vecenv as vecenv

    monkeypatch.setattr(vecenv, "ale_available", lambda: False)
    with pytest.raises(ValueError, match=r'pip install "lpgx\[atari\]"'):
        AtariVec("Breakout", 2)


def _play(env: AtariVec, steps: int) -> dict[str, np.ndarray]:
    def body(state, k):
        action = jax.random.randint(k, (env.num_envs,), 0, env.num_actions, jnp.int32)
        state, out = env.step(state, k, action)
        return state, (out.reward, out.done, out.ended, out.score)

    state, _ = env.reset(jax.random.key(0))
    _, (reward, done, ended, score) = jax.jit(
        lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.key(1), steps))
    )(state)
    return {
        "reward": np.asarray(reward),
        "done": np.asarray(done),
        "ended": np.asarray(ended),
        "score": np.asarray(score),
    }


@needs_ale
@pytest.mark.parametrize("game", ["Qbert"])  # Breakout: the next test
def test_random_play_returns_raw_scores(game: str) -> None:
    env = AtariVec(game, 8, seed=0)
    assert env.obs_shape == (4, 84, 84)
    out = _play(env, 500)  # 4000 agent steps, 16000 frames
    assert set(np.unique(out["reward"])) <= {-1.0, 0.0, 1.0}  # the agent learns from signs
    scores = out["score"][out["ended"]]
    assert scores.size > 0, "random play finishes games within 500 steps"
    # Raw scores, not sums of clipped rewards: Q*bert scores 25 a cube.
    if game == "Qbert":
        assert np.all(scores % 25 == 0) and scores.max() > out["reward"].sum(axis=0).max()
    # Episodic life: more agent episodes (a lost life) than finished games.
    assert out["done"].sum() > out["ended"].sum()


@pytest.mark.slow
@needs_ale
def test_mgrl_runs_on_atari_from_the_command_line(tmp_path: Path) -> None:
    # The meta-gradient through windows that step the emulators inside the compiled loop. A
    # small MLP stands in for the Nature CNN (whose second-order compilation takes minutes on
    # 2 cores; benchmarks/atari_fps.py times it).
    out = tmp_path / "run"
    flags = ["--env-mode", "atari:Breakout", "--env-workers", "4", "--env-steps", "2400"]
    flags += ["--mgrl-torso", "mlp", "--agent-hidden", "8", "--chunk-size", "10"]
    assert cli(["train", "--preset", "mgrl", *flags, "--out", str(out)]) == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 40 and records[-1]["env_steps"] == 2400
    assert all(np.isfinite(r["meta/gamma"]) for r in records)
    assert records[-1]["meta/gamma"] != records[0]["meta/gamma"]
    # Raw scores of finished games (random-ish play ends a game in a few hundred steps).
    returns = [r["episode_return"] for r in records if np.isfinite(r["episode_return"])]
    assert returns and all(x >= 0 for x in returns)
