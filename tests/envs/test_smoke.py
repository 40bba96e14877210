"""Every named level set samples tasks that stack, reset and step."""

import jax
import pytest

import lpgx
from lpgx.envs import get_level_set


def test_unknown_level_set_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="choose one of: dense, sparse"):
        get_level_set("nope")


@pytest.mark.parametrize("name", ["tabular", "rand_all", "mazes"])
def test_level_set_samples_stack_and_step(name: str, key: jax.Array) -> None:
    levels = get_level_set(name)
    env = levels.env()
    tasks = jax.vmap(levels.sample)(jax.random.split(key, 3))
    assert tasks.lifetime.shape == (3,)
    state, obs = jax.vmap(env.reset)(jax.random.split(key, 3), tasks.level)
    actions = jax.numpy.zeros(3, jax.numpy.int32)
    _, obs2, reward, done = jax.vmap(env.step)(
        jax.random.split(key, 3), tasks.level, state, actions
    )
    assert obs2.shape == obs.shape
    assert reward.shape == done.shape == (3,)
    assert isinstance(env, lpgx.GridWorld)
