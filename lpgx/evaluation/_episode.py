"""What an agent does: train a fresh agent from scratch with a run's learned rule on one level,
record one episode of it, and draw the episode as a strip of frames (``lpgx levels show NAME
--agent RUN_DIR --png PATH``)."""

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .._typing import PRNGKeyArray
from ..envs import GridWorld, Level, Task
from ..lifetime import Learner, evaluate_return, train_lifetime
from ..rules import AbstractUpdateRule

__all__ = ["Episode", "plot_episode", "record_episode", "train_and_record"]


class Episode(eqx.Module):
    """One episode, step by step: index 0 is the reset, index ``t`` the state after the
    ``t``-th action. Entries after the episode ended (``t > length``) repeat its last state."""

    pos: Int[Array, " states"]
    obj_pos: Int[Array, "states objs"]
    obj_exists: Bool[Array, "states objs"]
    reward: Float[Array, " states"]
    length: Int[Array, ""]


def record_episode(
    env: GridWorld, level: Level, policy: Any, key: PRNGKeyArray, max_steps: int
) -> Episode:
    """Act with `policy` (observation → action logits, actions sampled) for one episode of
    `level`, recording the agent's cell and the objects after every step (at the last step the
    cell it arrived in, not the automatic reset)."""
    k_reset, k_run = jax.random.split(key)
    state, obs = env.reset(k_reset, level)

    def step(carry: tuple[Any, ...], k: PRNGKeyArray) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        state, obs, ended, last = carry
        k_act, k_env = jax.random.split(k)
        action = jax.random.categorical(k_act, policy(obs)).astype(jnp.int32)
        new_state, new_obs, reward, done = env.step(k_env, level, state, action)
        arrived = env._move(level, state.pos, action)  # the cell before the automatic reset
        collected = state.obj_exists & (state.obj_pos == arrived)
        now = (
            arrived,
            jnp.where(done, state.obj_pos, new_state.obj_pos),
            jnp.where(done, state.obj_exists & ~collected, new_state.obj_exists),
        )
        shown = jax.tree.map(lambda a, b: jnp.where(ended, a, b), last, now)
        record = (*shown, jnp.where(ended, 0.0, reward), ~ended)
        return (new_state, new_obs, ended | done, shown), record

    keys = jax.random.split(k_run, max_steps)
    first = (state.pos, state.obj_pos, state.obj_exists)
    _, (pos, obj_pos, exists, reward, live) = jax.lax.scan(
        step, (state, obs, jnp.zeros((), jnp.bool_), first), keys
    )
    return Episode(
        pos=jnp.concatenate([state.pos[None], pos]),
        obj_pos=jnp.concatenate([state.obj_pos[None], obj_pos]),
        obj_exists=jnp.concatenate([state.obj_exists[None], exists]),
        reward=jnp.concatenate([jnp.zeros((1,), reward.dtype), reward]),
        length=jnp.sum(live, dtype=jnp.int32),
    )


@eqx.filter_jit
def train_and_record(
    learner: Learner,
    rule: AbstractUpdateRule,
    task: Task,
    key: PRNGKeyArray,
    num_updates: int,
    max_steps: int,
    eval_episodes: int = 64,
) -> tuple[Episode, Float[Array, ""]]:
    """Train a fresh agent with `rule` on `task` for `num_updates` updates, then record one
    episode of it; also its mean return over `eval_episodes` episodes (for the caption)."""
    k_train, k_episode, k_eval = jax.random.split(key, 3)
    agent, _ = train_lifetime(learner, rule, task, k_train, num_updates)
    env = learner.env
    if not isinstance(env, GridWorld):
        raise ValueError("episodes can be drawn for grid-world levels only")
    episode = record_episode(env, task.level, agent.params.policy, k_episode, max_steps)
    mean = jnp.mean(
        evaluate_return(learner, agent.params, task.level, k_eval, eval_episodes, max_steps)
    )
    return episode, mean


def plot_episode(
    level: Level,
    episode: Episode,
    path: Path,
    title: str,
    frames: int = 8,
) -> Path:
    """Write a PNG strip of `frames` moments of `episode` on `level`: walls, the objects that
    exist at that moment, the agent (red) and its path so far, the time and the return."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    from ..envs._render import _EMPTY_COLOUR, _WALL_COLOUR, _type_colour, type_letter

    g = int(level.grid_size)
    walls = np.asarray(level.walls)[: g * g].reshape(g, g)
    types = np.asarray(level.obj_types)
    n = int(level.n_objs)
    length = int(episode.length)
    pos = np.asarray(episode.pos)
    obj_pos = np.asarray(episode.obj_pos)
    exists = np.asarray(episode.obj_exists)
    returns = np.cumsum(np.asarray(episode.reward))
    moments = sorted({round(float(t)) for t in np.linspace(0, length, min(frames, length + 1))})
    fig = Figure(figsize=(2.3 * len(moments), 2.9), layout="constrained")
    axes = fig.subplots(1, len(moments), squeeze=False)[0]
    for ax, t in zip(axes, moments, strict=True):
        ax.set_xlim(-0.5, g - 0.5)
        ax.set_ylim(g - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for r in range(g):
            for c in range(g):
                colour = _WALL_COLOUR if walls[r, c] else _EMPTY_COLOUR
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=colour, linewidth=0))
        for i in range(n):
            if exists[t, i]:
                r, c = divmod(int(obj_pos[t, i]), g)
                ax.add_patch(Circle((c, r), 0.38, facecolor=_type_colour(int(types[i]))[0]))
                ax.text(c, r, type_letter(int(types[i])), ha="center", va="center",
                        color="white", fontsize=7, fontweight="bold")  # fmt: skip
        rows, cols = np.divmod(pos[: t + 1], g)
        ax.plot(cols, rows, color="tab:red", alpha=0.45, linewidth=1.5)
        ax.add_patch(Circle((cols[-1], rows[-1]), 0.3, facecolor="tab:red", edgecolor="k"))
        ax.set_title(f"t = {t}, return {returns[t]:.2f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    return path
