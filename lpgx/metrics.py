"""What each metric of ``metrics.jsonl`` means: its display name, unit, the axis scale it is
drawn on, and a one-line description. The live table of ``lpgx train``, ``lpgx plot`` and the
README's list of metrics all read this one table; a metric missing from it is shown under its
raw key (and `describe` says so).

``metrics.jsonl`` holds one JSON record per meta-step: ``step``, ``env_steps`` (agent environment
steps so far), ``wall_s`` (seconds since the run started, across resumptions) and every metric
below that the run's meta-optimiser, rule and curriculum report. The held-out evaluation is in
``eval.json`` (returns, the level set, agents, lifetime, and the fraction of the optimum).
"""

from dataclasses import dataclass
from typing import Literal

__all__ = ["METRICS", "MetricInfo", "describe", "is_periodic_eval"]

Scale = Literal["linear", "log", "symlog"]


@dataclass(frozen=True)
class MetricInfo:
    """How to show one metric."""

    name: str
    """Display name (figure titles, the live table)."""
    unit: str
    """Unit of the value (the y-axis label); ``""`` for a pure number."""
    scale: Scale
    """Axis scale: ``log`` for positive values that span decades, ``symlog`` for signed ones."""
    description: str
    """One line: what the value is and where it comes from."""
    smooth: bool = True
    """Whether a moving average is meaningful (not for counts of events)."""

    @property
    def label(self) -> str:
        """The y-axis label: the name with its unit."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


_PER_STEP = "reward / env step"

METRICS: dict[str, MetricInfo] = {
    # Meta-gradient: the outer (meta) objective.
    "eval_rollout_reward": MetricInfo(
        "outer-rollout reward", _PER_STEP, "linear",
        "mean reward per environment step of the rollout that scores the rule (after K agent "
        "updates), over agents and workers",
    ),
    "outer_pg_loss": MetricInfo(
        "outer policy-gradient loss", "", "symlog",
        "A2C-style policy-gradient loss of the outer rollout (its gradient is the meta-gradient)",
    ),
    "outer_loss": MetricInfo(
        "outer loss", "", "symlog",
        "outer policy-gradient loss plus the rule's meta-regularisers (β₀…β₃)",
    ),
    "meta_grad_norm": MetricInfo(
        "meta-gradient norm", "before clipping", "log",
        "global norm of the meta-gradient before --lpg-max-grad-norm clips it",
    ),
    # The agents being trained by the rule (mean over agents and their K updates).
    "agent/loss": MetricInfo(
        "agent loss", "", "symlog", "the loss the rule gives the agents (mean over updates)"
    ),
    "agent/policy_loss": MetricInfo(
        "agent policy loss", "", "symlog", "policy part of the agents' loss (−π̂ · log π)"
    ),
    "agent/pi_hat_l2": MetricInfo(
        "mean π̂²", "", "log", "mean square of the rule's policy target π̂ (β₂ penalises it)"
    ),
    "agent/y_hat_l2": MetricInfo(
        "mean Σŷ²", "", "log", "mean square norm of the rule's prediction target ŷ (β₃)"
    ),
    "agent/y_kl": MetricInfo(
        "KL(y ‖ ŷ)", "nats", "log", "how far the agents' predictions y are from the rule's ŷ"
    ),
    "agent/y_entropy": MetricInfo(
        "prediction entropy", "nats", "linear", "entropy of the agents' prediction vector y"
    ),
    "agent/policy_entropy": MetricInfo(
        "policy entropy", "nats", "linear", "entropy of the agents' policies (log 5 ≈ 1.61 max)"
    ),
    "agent/value_loss": MetricInfo(
        "critic loss", "", "log",
        "loss of the value critic trained beside each agent for the outer A2C loss",
    ),
    "agent/regulariser": MetricInfo(
        "meta-regulariser", "", "symlog", "the rule's meta-regularisers (entropy and L2 terms)"
    ),
    "agent/rollout_reward": MetricInfo(
        "agent rollout reward", _PER_STEP, "linear",
        "mean reward per environment step of the agents' own training rollouts",
    ),
    "agent/active": MetricInfo(
        "active agents", "fraction", "linear",
        "fraction of agent updates inside a lifetime (ended lifetimes are masked)",
    ),
    "agent/updates": MetricInfo(
        "agent updates", "per candidate", "linear",
        "agent updates in an ES candidate's lifetime this generation",
    ),
    "ended_lifetimes": MetricInfo(
        "ended lifetimes", "agents / meta-step", "linear",
        "agents whose lifetime ended at this meta-step (they restart on new tasks)",
        smooth=False,
    ),
    # Evolution strategies (TA-LPG).
    "fitness_mean": MetricInfo(
        "ES fitness (mean)", "return / episode", "linear",
        "mean return of the candidates' agents at the end of their lifetimes",
    ),
    "fitness_max": MetricInfo(
        "ES fitness (max)", "return / episode", "linear", "best candidate's return"
    ),
    "fitness_min": MetricInfo(
        "ES fitness (min)", "return / episode", "linear", "worst candidate's return"
    ),
    "fitness_std": MetricInfo(
        "ES fitness (s.d.)", "return / episode", "linear", "spread of the candidates' returns"
    ),
    "es_lr": MetricInfo("ES learning rate", "", "log", "decayed learning rate of the ES mean"),
    "es_sigma": MetricInfo("ES σ", "", "log", "standard deviation of the ES perturbations"),
    "es_mean_norm": MetricInfo(
        "ES mean norm", "", "linear", "norm of the rule's parameters (the ES mean)"
    ),
    # Curriculum (PLR, GROOVE).
    "curriculum/replayed": MetricInfo(
        "replayed levels", "levels / meta-step", "linear",
        "ended agents given a level from the buffer", smooth=False,
    ),
    "curriculum/fresh": MetricInfo(
        "fresh levels", "levels / meta-step", "linear",
        "ended agents given a newly sampled level", smooth=False,
    ),
    "curriculum/ended_score": MetricInfo(
        "score of ended levels", "score", "linear", "mean score of the levels scored this step"
    ),
    "curriculum/buffer_filled": MetricInfo(
        "buffer filled", "fraction", "linear", "fraction of the level buffer in use"
    ),
    "curriculum/buffer_seen": MetricInfo(
        "buffer scored", "fraction", "linear", "fraction of the buffer's levels scored"
    ),
    "curriculum/score_mean": MetricInfo(
        "buffer score (mean)", "score", "linear", "mean score of the buffer's scored levels"
    ),
    "curriculum/score_max": MetricInfo(
        "buffer score (max)", "score", "linear", "best score in the buffer"
    ),
    # Online meta-gradient RL (--rule mgrl): one agent per seed learning its own hyperparameters.
    "episode_return": MetricInfo(
        "episode return", "raw score / game", "linear",
        "mean raw game score (before reward clipping) of the last 64 finished games",
    ),
    "episodes_ended": MetricInfo(
        "finished games", "games / window", "linear",
        "games finished during the window (all environments)", smooth=False,
    ),
    "meta/gamma": MetricInfo(
        "learned γ", "", "linear", "the agent's discount, sigmoid of its meta-logit"
    ),
    "meta/lambda": MetricInfo(
        "learned λ", "", "linear", "the agent's GAE λ, sigmoid of its meta-logit"
    ),
    "meta/value_coeff": MetricInfo(
        "learned value coefficient", "", "linear", "weight of the critic loss in the agent's loss"
    ),
    "meta/entropy_coeff": MetricInfo(
        "learned entropy coefficient", "", "log", "weight of the entropy bonus in the agent's loss"
    ),
    "meta_nan_skips": MetricInfo(
        "skipped meta-updates", "total", "linear",
        "meta-updates skipped so far because the meta-gradient was not finite",
    ),
    "agent/grad_norm": MetricInfo(
        "agent gradient norm", "before clipping", "log",
        "global norm of the agent's gradient before --agent-max-grad-norm clips it",
    ),
    "agent/learning_rate": MetricInfo(
        "agent learning rate", "", "linear", "the agent's Adam learning rate (decays linearly to 0)"
    ),
}  # fmt: skip

# Bookkeeping columns of every record (not metrics).
RECORD_FIELDS = ("step", "env_steps", "wall_s")


# ``eval/NAME/<suffix>``: the periodic evaluation of ``lpgx train --eval-on NAME``.
_EVAL_PREFIX = "eval/"
_EVAL_SUFFIXES: dict[str, tuple[str, str, str]] = {
    "return": (
        "held-out return on {}",
        "return / episode",
        "mean return of one episode of fresh agents trained by the current rule for a whole "
        "lifetime on fixed tasks of {} (--eval-on; every --eval-every meta-steps)",
    ),
    "return_se": (
        "held-out return s.e. on {}",
        "return / episode",
        "standard error over agents of the held-out return on {}",
    ),
    "fraction_of_optimum": (
        "held-out fraction of optimum on {}",
        "",
        "held-out return on {} divided by the exact optimal return of the same tasks",
    ),
}


def is_periodic_eval(key: str) -> bool:
    """Whether `key` is a metric of the periodic evaluation (``eval/NAME/...``)."""
    return key.startswith(_EVAL_PREFIX) and key.rsplit("/", 1)[-1] in _EVAL_SUFFIXES


def describe(key: str) -> MetricInfo:
    """The `MetricInfo` of `key`; an unknown key is shown as itself on a linear scale."""
    if key in METRICS:
        return METRICS[key]
    if is_periodic_eval(key):
        name, suffix = key.removeprefix(_EVAL_PREFIX).rsplit("/", 1)
        title, unit, text = _EVAL_SUFFIXES[suffix]
        return MetricInfo(title.format(name), unit, "linear", text.format(name), smooth=False)
    return MetricInfo(key, "", "linear", "(not described in lpgx.metrics)")
