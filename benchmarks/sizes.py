"""The sizes of the benchmark suites behind ``lpgx bench`` (`SUITES`, `TINY`), and the check
that a suite's populations split over the devices used."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from lpgx.sharding import agent_mesh

from . import es_plr, meta_step

__all__ = ["SUITES", "TINY", "Sizes", "check_sizes", "validate_devices"]


@dataclass(frozen=True)
class Sizes:
    """The sizes of one suite's items."""

    env_level_set: str = "all"
    """Level set of the environment-stepping item (random actions)."""
    env_num_envs: int = 64
    """Parallel (vmapped) environments."""
    env_steps: int = 200
    """Environment steps per timed call."""
    agent_level_set: str = "all_shortlife"
    """Level set of the agent-update item (A2C; the set's reference agent)."""
    agent_num_agents: int = 8
    agent_updates: int = 5
    """`agent_update` calls per timed call."""
    agent_workers: int = 64
    agent_rollout_len: int = 20
    meta: meta_step.Config = field(
        default_factory=lambda: meta_step.Config(lpg_gru_width=64, workers=16, repeats=3)
    )
    """The meta-gradient step item (its ``num_agents`` is the item's; the sweep varies it)."""
    sweep_max_agents: int = 8
    """Largest number of agents of the sweep."""
    sweep_time_limit_s: float = 60.0
    """A sweep point (compile + warm-up + repeats) may take this long; the sweep stops after
    one that took longer, or before one predicted to."""
    es: es_plr.ESBench = field(default_factory=lambda: es_plr.ESBench(num_updates=None))
    """The ES-generation item (``num_updates=None``: the level set's full lifetime)."""
    plr: es_plr.PLRBench = field(default_factory=lambda: es_plr.PLRBench(repeats=2))
    """The PLR/GROOVE item: a chunk of meta-steps with alg_regret, and with random."""
    time_budget_s: float | None = 110.0
    """The sweep starts no point predicted to end more than this many seconds after the suite
    started (``None``: no budget)."""
    repeats: int = 5
    """Timed calls of the environment and agent items."""


SUITES: dict[str, tuple[str, Sizes]] = {
    "quick": (
        "CPU-sized: 64 envs, 8 A2C agents, the quick preset's meta-step (GRU 64, 16 workers), "
        "sweep to 8 agents; about two minutes on 2 cores",
        Sizes(),
    ),
    "full": (
        "reference sizes: 4096 envs, 64 A2C agents, the acceptance meta-step (GRU 256, "
        "64 workers × 20 steps, K 5), sweep to 4096 agents",
        Sizes(
            env_num_envs=4096,
            env_steps=500,
            agent_num_agents=64,
            agent_updates=10,
            meta=meta_step.Config(repeats=5),
            es=es_plr.ESBench(
                pairs=64,
                workers=64,
                rollout_len=20,
                eval_episodes=64,
                lpg_gru_width=256,
                num_updates=None,
                repeats=3,
            ),
            plr=es_plr.PLRBench(
                num_agents=64,
                workers=64,
                lpg_gru_width=256,
                chunk_size=10,
                buffer_size=4000,
                score_episodes=64,
                repeats=3,
            ),
            sweep_max_agents=4096,
            sweep_time_limit_s=300.0,
            time_budget_s=None,
        ),
    ),
}

TINY = Sizes(
    env_level_set="sparse",  # one fixed layout: its sampler compiles in a fraction of `all`'s
    env_num_envs=2,
    env_steps=5,
    agent_level_set="sparse",
    agent_num_agents=2,
    agent_updates=2,
    agent_workers=2,
    agent_rollout_len=3,
    meta=meta_step.Config(
        level_set="sparse",
        num_agents=1,
        workers=2,
        rollout_len=3,
        num_agent_updates=1,
        lpg_gru_width=8,
        repeats=2,
        task_pool=2,
    ),
    es=es_plr.ESBench(
        level_set="sparse",
        pairs=1,
        workers=2,
        rollout_len=3,
        num_updates=2,
        eval_episodes=2,
        lpg_gru_width=8,
        lifetime_conditioning=False,
        repeats=2,
    ),
    plr=es_plr.PLRBench(
        level_set="sparse",
        num_agents=2,
        workers=2,
        rollout_len=3,
        num_agent_updates=1,
        lpg_gru_width=8,
        chunk_size=2,
        buffer_size=4,
        score_episodes=2,
        repeats=2,
    ),
    sweep_max_agents=2,
    sweep_time_limit_s=120.0,
    time_budget_s=None,
    repeats=2,
)
"""The smallest sizes that exercise every item and a two-point sweep (tests)."""


def validate_devices(devices: int | None) -> int:
    """The number of devices to use: all by default, else `devices` if there are that many
    (`lpgx.sharding.agent_mesh` raises a `ValueError` naming the fix otherwise)."""
    return int(agent_mesh(devices).devices.size)


def _largest_divisor(counts: Iterable[int], limit: int) -> int:
    return max(d for d in range(1, limit + 1) if all(c % d == 0 for c in counts))


def check_sizes(sizes: Sizes, device_count: int) -> None:
    """Raise `ValueError` (before anything compiles) unless every item's population splits
    evenly over `device_count` devices: the environments, the A2C agents, the agents of each
    meta-step mini-batch, the ES pairs and the PLR agents. The sweep uses multiples of the
    device count, so it always fits."""
    counts = {
        "environments (env_step)": sizes.env_num_envs,
        "A2C agents (agent_update)": sizes.agent_num_agents,
        "agents per mini-batch (meta_gradient_step)": sizes.meta.num_agents
        // sizes.meta.num_mini_batches,
        "antithetic pairs (es_generation)": sizes.es.pairs,
        "agents (plr_groove_step)": sizes.plr.num_agents,
    }
    bad = [f"{n} {what}" for what, n in counts.items() if n % device_count]
    if bad:
        best = _largest_divisor(counts.values(), device_count)
        raise ValueError(
            f"this suite cannot be split over {device_count} devices: {', '.join(bad)} "
            f"do not divide by {device_count}. Pass --devices {best} (the most devices every "
            "item divides over), or use a suite with larger populations (--suite full)."
        )
