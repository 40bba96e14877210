"""Composition: names and flags become objects here, and nowhere else.

`TrainConfig` is what a user types: one flat record whose field names follow the GROOVE
reference's command-line options (``--num-agents``, ``--lpg-gru-width``, ``--es-sigma-init``…),
so commands written for the reference keep working, and ``lpgx train --help`` lists every
setting of every component. Plain registries map names to constructors:

| registry | selected by | holds |
|---|---|---|
| `TASKS`, `TASK_FAMILIES` | ``--env-mode`` | level sets; ``gymnax:``, ``minatar:`` families |
| `VEC_ENV_FAMILIES` | ``--env-mode`` (online) | ``atari:NAME`` (ale-py's vector env) |
| `RULES` | ``--rule`` | update rules (``init_rule`` factories); ``mgrl``: online |
| `META_OPTIMISERS` | ``--use-es`` | ``meta_gradient``, ``es`` |
| `CURRICULA` | ``--score-function`` | ``random``, ``frozen``, ``plr`` (with a score) |
| `SCORES` | ``--score-function`` | PLR scores |

Each constructor reads the flags of its own component and builds that component's config,
which sits beside the component and validates itself (a wrong value is rejected once, before
anything compiles, with the flags to fix named). Adding an environment, a rule or a score is
one module and one line here.

Two trainers share the host loop (`lpgx.train`): the population `Trainer` (LPG and friends:
many agent lifetimes, one rule) and the `lpgx.mgrl.OnlineTrainer` (``--rule mgrl``: one
lifetime per seed whose own hyperparameters are meta-learned online, ``--seeds`` vmapped).
"""

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, cast

from ._typing import PRNGKeyArray
from .chunked import AbstractChunkedTrainer
from .curriculum import (
    PLR,
    AbstractCurriculum,
    AbstractScore,
    AlgorithmicRegret,
    DomainRandomisation,
    Frozen,
    L1ValueLoss,
    MaxMC,
    PositiveValueLoss,
)
from .envs import (
    LEVEL_SET_NAMES,
    AbstractTaskDistribution,
    GymnaxTasks,
    LevelsFile,
    get_level_set,
)
from .lifetime import AgentConfig, Learner
from .meta import (
    AbstractMetaOptimiser,
    ESConfig,
    EvolutionStrategy,
    MetaGradient,
    MetaGradientConfig,
)
from .mgrl import AbstractVecEnv, AtariVec, GymnaxVec, OnlineConfig, OnlineTrainer
from .rules import A2C, A2CConfig, AbstractUpdateRule, LPGConfig
from .trainer import Trainer

__all__ = [
    "CURRICULA",
    "META_OPTIMISERS",
    "PRESETS",
    "RULES",
    "SCORES",
    "TASKS",
    "TASK_FAMILIES",
    "VEC_ENV_FAMILIES",
    "TrainConfig",
    "build",
    "build_online_trainer",
    "build_trainer",
    "make_curriculum",
    "make_learner",
    "make_meta_optimiser",
    "make_rule",
    "make_score",
    "make_tasks",
    "make_vec_env",
]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a meta-training run. Field names follow the GROOVE reference's
    command-line options (``--num-agents``, ``--lpg-learning-rate``, …)."""

    env_mode: str = "all_shortlife"
    """Task distribution to meta-train on (`lpgx levels list`)."""
    seed: int = 0
    """Seed of the whole run (rule init, tasks, agents); a run is reproducible from it."""
    seeds: int = 1
    """Independent runs in one (--rule mgrl: vmapped, seeds seed to seed+N−1, each with its
    own meta-parameters; metrics.jsonl holds their mean and each run's value)."""
    train_steps: int = 30000
    """Number of meta-steps (--rule mgrl: windows of K updates)."""
    env_steps: int | None = None
    """Environment steps per run (--rule mgrl): sets --train-steps to the windows they take."""
    num_agents: int = 512
    """Agents trained in parallel (ES: antithetic pairs); the meta-gradient is their mean."""
    num_mini_batches: int = 16
    """The population is processed in this many sequential vmapped groups; must divide it."""
    stagger: bool = True
    """Draw first-generation lifetimes uniformly in [1, N] so agents do not reset together."""
    # Agents
    env_workers: int = 64
    """Parallel environments per agent."""
    train_rollout_len: int = 20
    """Steps per rollout (one agent update per rollout)."""
    agent_hidden: tuple[int, ...] | None = None
    """Hidden widths of the agents' networks; () is the tabular agent (default: a table for
    index observations, an MLP of 32 otherwise)."""
    agent_optimiser: Literal["sgd", "adam"] | None = None
    """The agents' optimiser (default: sgd for the tabular agent, adam for an MLP)."""
    agent_policy_lr: float | None = None
    """Learning rate of the agents' policy head (default: 40 with sgd, 1e-3 with adam)."""
    agent_aux_lr: float | None = None
    """Learning rate of the agents' second head, LPG's y or A2C's critic (default: 4 / 1e-3)."""
    agent_max_grad_norm: float = 0.5
    """Per-head gradient clip of sgd agents."""
    # The rule being meta-learned
    rule: str = "lpg"
    """Update rule to meta-train (`lpgx.compose.RULES`)."""
    lpg_embedding_net_width: int = 16
    """Hidden width of the LPG's embedding φ of the prediction vector."""
    lpg_gru_width: int = 256
    """Width of the LPG's backward recurrent core."""
    lpg_target_width: int = 8
    """Size of the prediction vector y."""
    lpg_agent_target_coeff: float = 0.5
    """α_y: weight of KL(y ‖ ŷ) in the agent's loss."""
    lpg_core: Literal["gru", "lstm"] = "gru"
    """Recurrent core of the LPG (the reference uses a GRU, the paper an LSTM)."""
    lpg_dtype: Literal["float32", "bfloat16"] = "float32"
    """Compute dtype of the LPG's recurrent core, a GPU speed knob (float32 is the reference;
    parameters, gradients and the meta-optimiser stay float32)."""
    lifetime_conditioning: bool = False
    """TA-LPG: feed n/N and log N to the LPG."""
    gamma: float = 0.99
    """Discount fed to the LPG and used by the value critic's GAE and the PLR scores."""
    gae_lambda: float = 0.95
    """λ of the value critic's GAE (and of the PLR scores)."""
    lpg_policy_entropy_coeff: float = 5e-2
    """β₀: weight of the agent policy's entropy bonus in the outer loss."""
    lpg_target_entropy_coeff: float = 1e-3
    """β₁: weight of the prediction vector's entropy bonus."""
    lpg_policy_l2_coeff: float = 5e-3
    """β₂: weight of mean(π̂²)."""
    lpg_target_l2_coeff: float = 1e-3
    """β₃: weight of mean(Σŷ²)."""
    # Meta-gradient
    num_agent_updates: int = 5
    """K: differentiable agent updates per meta-step."""
    lpg_learning_rate: float = 1e-4
    """Learning rate of the meta-optimiser (Adam for the meta-gradient; ES's initial one)."""
    lpg_max_grad_norm: float = 0.5
    """Global-norm clip of the meta-gradient."""
    meta_differentiation: Literal["exact", "stop_gradient", "lvc"] = "exact"
    """How the meta-gradient goes through agent updates: exact (the true derivative),
    stop_gradient (the reference's), lvc (a lower-bias Hessian); see `lpgx bias lpg`."""
    # Online meta-gradient RL (--rule mgrl)
    mgrl_meta_learn: bool = True
    """Meta-learn γ, λ and the value and entropy coefficients online; without it the same
    loop is the A2C baseline (--preset a2c-online)."""
    mgrl_torso: Literal["auto", "nature", "minatar", "mlp"] = "auto"
    """Agent network: nature (Atari's CNN), minatar (MinAtar's CNN), mlp (--agent-hidden), or
    auto from the observations."""
    mgrl_lr_decay: bool = True
    """Decay the agent's learning rate linearly to 0 over the run (the reference)."""
    # Evolution strategies (TA-LPG)
    use_es: bool = False
    """Meta-train by evolution strategies (antithetic pairs; --lpg-learning-rate is ES's)."""
    lpg_opt: Literal["adam", "sgd"] = "adam"
    """Optimiser of the ES mean (the reference's --lpg_opt; the meta-gradient uses Adam)."""
    es_b1: float = 0.99
    """β₁ of the ES mean's Adam (the reference's evosax default)."""
    es_lrate_decay: float = 0.999
    """ES learning-rate decay per generation."""
    es_lrate_limit: float = 1e-5
    """Floor of the decaying ES learning rate."""
    es_sigma_init: float = 0.1
    """σ of the ES perturbations."""
    es_sigma_decay: float = 1.0
    """Decay of σ per generation (1: constant, as in the reference)."""
    es_sigma_limit: float = 0.1
    """Floor of the decaying σ."""
    es_num_eval_episodes: int = 64
    """Episodes behind each candidate's fitness."""
    es_shaping: Literal["pairwise", "centered_rank"] = "pairwise"
    """Fitness shaping: pairwise (the winner of each antithetic pair scores 1) or centered_rank."""
    es_init: Literal["network", "zeros"] = "network"
    """ES mean at the start: the rule's initialisation, or zeros (the reference)."""
    # Curriculum (GROOVE's level sampler)
    score_function: str = "random"
    """Curriculum: random (domain randomisation), frozen (a fixed buffer), or PLR scored by
    pvl / l1_value_loss / maxmc / alg_regret (GROOVE)."""
    buffer_size: int = 4000
    """Levels in the PLR / frozen buffer."""
    p_replay: float = 0.5
    """Probability that an ended agent replays a buffered level (PLR)."""
    score_transform: Literal["rank", "proportional", "topk"] = "rank"
    """PLR prioritisation: rank (Jiang et al.), proportional (softmax), topk (GROOVE's greedy)."""
    score_temperature: float = 1.0
    """β of the PLR prioritisation."""
    staleness_coeff: float = 0.3
    """Weight of the staleness term in PLR's replay distribution."""
    score_episodes: int = 64
    """Evaluation episodes behind alg_regret's returns."""
    score_batch: int | None = None
    """Ended agents scored (and antagonists trained) together in one vmapped group (default:
    num_agents // 64, at least 1; 1 suits a CPU, more an accelerator)."""
    a2c_entropy_coeff: float = 0.01
    """Entropy bonus of A2C (GROOVE's antagonist)."""
    a2c_value_coeff: float = 1.0
    """Value-loss weight of A2C."""
    a2c_gamma: float = 0.99
    """Discount of A2C's GAE."""
    a2c_gae_lambda: float = 0.95
    """λ of A2C's GAE."""
    # The run
    chunk_size: int = 25
    """Meta-steps per compiled chunk; metrics, progress and checkpoints happen between chunks."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many meta-steps (and always at the end)."""
    eval_agents: int = 32
    """Agents trained from scratch on held-out tasks by the initial and final rule."""
    eval_episodes: int = 16
    """Evaluation episodes per held-out agent."""
    eval_on: str = ""
    """Held-out task distributions (comma-separated, as `lpgx eval --on`) on which fresh agents
    are trained by the current rule every --eval-every meta-steps; empty: none."""
    eval_every: int | None = None
    """Meta-steps between evaluations on --eval-on (at the first chunk boundary at or after
    each multiple); default: the smallest multiple of --chunk-size for which the evaluation's
    environment steps are at most a tenth of the training's in between."""
    eval_on_agents: int = 8
    """Fresh agents per --eval-on task distribution at each evaluation (each on its own task,
    the same agents and tasks every time)."""
    eval_on_lifetime: int | None = None
    """Updates of each --eval-on agent (default: the longest lifetime of the training tasks,
    so held-out agents live as long as training agents; `lpgx eval` measures whole lifetimes)."""
    devices: int | None = None
    """Devices to spread the agents over (default: all visible devices)."""

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1:
            raise ValueError(f"--checkpoint-every must be at least 1, got {self.checkpoint_every}")
        if self.devices is not None and self.devices < 1:
            raise ValueError(f"--devices must be at least 1, got {self.devices}")
        for name in ("eval_every", "eval_on_agents", "eval_on_lifetime"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{_flag(name)} must be at least 1, got {value}")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}")
        if self.env_steps is not None and self.env_steps < 1:
            raise ValueError(f"--env-steps must be at least 1, got {self.env_steps}")
        if self.rule != "mgrl" and (self.seeds != 1 or self.env_steps is not None):
            raise ValueError(
                "--seeds and --env-steps apply to online runs (--rule mgrl: --preset mgrl, "
                "mgrl-lvc or a2c-online); a population run's agents are its --num-agents"
            )
        if self.rule == "mgrl" and self.eval_on.strip():
            raise ValueError(
                "--eval-on trains fresh agents with a learned update rule; an online run "
                "(--rule mgrl) adapts its own agent's hyperparameters and has no rule to hand "
                "to fresh agents: drop --eval-on"
            )

    @staticmethod
    def from_dict(values: dict[str, Any]) -> "TrainConfig":
        """A config from `dataclasses.asdict` output (e.g. a run's ``config.json``); lists
        become tuples, and a field it lacks (an older run) takes its default."""
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown config fields {', '.join(unknown)}; this config was written by "
                "another version of lpgx"
            )
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return TrainConfig(**cast(dict[str, Any], fixed))


T = TypeVar("T")


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _settings(cls: Callable[..., T], config: TrainConfig, fields: dict[str, str]) -> T:
    """``cls(name=config.<flag>, …)`` for ``fields`` (setting name -> flag); a rejected value
    names the flags to change."""
    try:
        return cls(**{name: getattr(config, flag) for name, flag in fields.items()})
    except ValueError as e:
        flags = ", ".join(_flag(f) for f in fields.values())
        raise ValueError(f"{e} (set by {flags})") from None


# Which flag sets each setting of each component (setting name -> TrainConfig field). Every
# setting of every component is here, so every one can be set from `lpgx train` (tested).
AGENT_FLAGS = {
    "num_workers": "env_workers",
    "rollout_len": "train_rollout_len",
    "hidden": "agent_hidden",
    "optimiser": "agent_optimiser",
    "policy_lr": "agent_policy_lr",
    "aux_lr": "agent_aux_lr",
    "max_grad_norm": "agent_max_grad_norm",
}
LPG_FLAGS = {
    "y_size": "lpg_target_width",
    "hidden": "lpg_gru_width",
    "core": "lpg_core",
    "embedding_width": "lpg_embedding_net_width",
    "lifetime_conditioning": "lifetime_conditioning",
    "gamma": "gamma",
    "y_coeff": "lpg_agent_target_coeff",
    "dtype": "lpg_dtype",
    "policy_entropy_coeff": "lpg_policy_entropy_coeff",
    "y_entropy_coeff": "lpg_target_entropy_coeff",
    "policy_l2_coeff": "lpg_policy_l2_coeff",
    "y_l2_coeff": "lpg_target_l2_coeff",
}
A2C_FLAGS = {
    "gamma": "a2c_gamma",
    "gae_lambda": "a2c_gae_lambda",
    "entropy_coeff": "a2c_entropy_coeff",
    "value_coeff": "a2c_value_coeff",
}
META_GRADIENT_FLAGS = {
    "num_agent_updates": "num_agent_updates",
    "learning_rate": "lpg_learning_rate",
    "max_grad_norm": "lpg_max_grad_norm",
    "gamma": "gamma",
    "gae_lambda": "gae_lambda",
    "differentiation": "meta_differentiation",
}
ES_FLAGS = {
    "learning_rate": "lpg_learning_rate",
    "lrate_decay": "es_lrate_decay",
    "lrate_limit": "es_lrate_limit",
    "b1": "es_b1",
    "optimiser": "lpg_opt",
    "sigma_init": "es_sigma_init",
    "sigma_decay": "es_sigma_decay",
    "sigma_limit": "es_sigma_limit",
    "num_eval_episodes": "es_num_eval_episodes",
    "shaping": "es_shaping",
    "init": "es_init",
}
PLR_FLAGS = {
    "buffer_size": "buffer_size",
    "p_replay": "p_replay",
    "transform": "score_transform",
    "temperature": "score_temperature",
    "staleness_coeff": "staleness_coeff",
    "score_batch": "score_batch",
}
FROZEN_FLAGS = {"buffer_size": "buffer_size"}
MGRL_FLAGS = {
    "num_envs": "env_workers",
    "rollout_len": "train_rollout_len",
    "num_inner_updates": "num_agent_updates",
    "learning_rate": "agent_policy_lr",
    "lr_decay": "mgrl_lr_decay",
    "max_grad_norm": "agent_max_grad_norm",
    "meta_learning_rate": "lpg_learning_rate",
    "meta_learn": "mgrl_meta_learn",
    "differentiation": "meta_differentiation",
    "outer_gamma": "gamma",
    "outer_lambda": "gae_lambda",
    "torso": "mgrl_torso",
    "hidden": "agent_hidden",
}


# --- Environments -------------------------------------------------------------------------

TASKS: dict[str, Callable[[], AbstractTaskDistribution]] = {
    name: functools.partial(get_level_set, name) for name in LEVEL_SET_NAMES
}
# MinAtar's games by their short names (``minatar:breakout``) -> gymnax's names.
MINATAR_GAMES = {
    "asterix": "Asterix-MinAtar",
    "breakout": "Breakout-MinAtar",
    "freeway": "Freeway-MinAtar",
    "seaquest": "Seaquest-MinAtar",
    "space_invaders": "SpaceInvaders-MinAtar",
}


def _minatar(name: str) -> AbstractTaskDistribution:
    game = name.lower().replace("-", "_")
    if game not in MINATAR_GAMES:
        raise ValueError(
            f"unknown MinAtar game {name!r}; choose one of: "
            + ", ".join(f"minatar:{g}" for g in MINATAR_GAMES)
        )
    return GymnaxTasks(MINATAR_GAMES[game])


# Families of task distributions named ``PREFIX:NAME`` (e.g. ``gymnax:Breakout-MinAtar``).
TASK_FAMILIES: dict[str, Callable[[str], AbstractTaskDistribution]] = {
    "gymnax": GymnaxTasks,
    "minatar": _minatar,
}
# Vectorised environments that only online runs use (``atari:Breakout``): name, workers, seed.
VEC_ENV_FAMILIES: dict[str, Callable[[str, int, int], AbstractVecEnv]] = {
    "atari": lambda name, workers, seed: AtariVec(name, workers, seed=seed),
}


def make_tasks(name: str) -> AbstractTaskDistribution:
    """The task distribution called `name` (``--env-mode``): a registered name,
    ``FAMILY:NAME`` for a family such as ``gymnax:CartPole-v1``, or a levels file (``*.json``,
    see `lpgx.envs.LevelsFile`)."""
    if name.endswith(".json"):
        return LevelsFile(name)
    family, sep, rest = name.partition(":")
    if sep and family in TASK_FAMILIES:
        return TASK_FAMILIES[family](rest)
    if sep and family in VEC_ENV_FAMILIES:
        raise ValueError(
            f"--env-mode {name} runs only online (--rule mgrl: --preset mgrl, mgrl-lvc or "
            "a2c-online)"
        )
    if name not in TASKS:
        families = ", ".join(f"{f}:NAME" for f in TASK_FAMILIES)
        raise ValueError(
            f"unknown --env-mode {name!r}; choose one of: {', '.join(TASKS)} (`lpgx levels "
            f"list`), {families}, or a levels file FILE.json"
        )
    return TASKS[name]()


def make_learner(config: TrainConfig, tasks: AbstractTaskDistribution) -> Learner:
    """The agents' `Learner` for `tasks` (network chosen from the observations)."""
    agent = _settings(AgentConfig, config, AGENT_FLAGS)
    return Learner(tasks.env(), agent)


def make_vec_env(config: TrainConfig) -> AbstractVecEnv:
    """The vectorised environment of an online run: ``--env-workers`` copies of a gymnax /
    MinAtar game (``minatar:breakout``, ``gymnax:CartPole-v1``), or an Atari game
    (``atari:Breakout``, with the ``atari`` extra)."""
    family, sep, rest = config.env_mode.partition(":")
    if sep and family in VEC_ENV_FAMILIES:
        return VEC_ENV_FAMILIES[family](rest, config.env_workers, config.seed)
    tasks = make_tasks(config.env_mode)
    if not isinstance(tasks, GymnaxTasks):
        raise ValueError(
            f"online runs (--rule mgrl) play one game: --env-mode minatar:NAME, gymnax:NAME or "
            f"atari:NAME, not {config.env_mode!r}"
        )
    env = tasks.env()
    return GymnaxVec(env, env.default_level(), config.env_workers, env.obs_shape)


# --- Rules --------------------------------------------------------------------------------

RuleFactory = Callable[[PRNGKeyArray], AbstractUpdateRule]


def _lpg(config: TrainConfig) -> RuleFactory:
    return _settings(LPGConfig, config, LPG_FLAGS).build


def _a2c_config(config: TrainConfig) -> A2CConfig:
    return _settings(A2CConfig, config, A2C_FLAGS)


def _a2c(config: TrainConfig) -> RuleFactory:
    rule = A2C(_a2c_config(config))
    return functools.partial(_constant_rule, rule)


def _constant_rule(rule: AbstractUpdateRule, key: PRNGKeyArray) -> AbstractUpdateRule:
    del key
    return rule


RULES: dict[str, Callable[[TrainConfig], RuleFactory]] = {"lpg": _lpg, "a2c": _a2c}
ONLINE_RULES = ("mgrl",)
"""Rules trained online by `lpgx.mgrl.OnlineTrainer` rather than by a meta-optimiser."""


def make_rule(config: TrainConfig) -> RuleFactory:
    """``key -> rule`` for ``--rule`` with its flags."""
    if config.rule not in RULES:
        choices = ", ".join([*RULES, *ONLINE_RULES])
        raise ValueError(f"unknown --rule {config.rule!r}; choose one of: {choices}")
    return RULES[config.rule](config)


# --- Meta-optimisers ----------------------------------------------------------------------


def _meta_gradient(
    config: TrainConfig, learner: Learner, tasks: AbstractTaskDistribution
) -> AbstractMetaOptimiser[Any]:
    del tasks
    settings = _settings(MetaGradientConfig, config, META_GRADIENT_FLAGS)
    return MetaGradient(learner, settings, num_mini_batches=config.num_mini_batches)


def _es(
    config: TrainConfig, learner: Learner, tasks: AbstractTaskDistribution
) -> AbstractMetaOptimiser[Any]:
    settings = _settings(ESConfig, config, ES_FLAGS)
    return EvolutionStrategy.for_tasks(
        learner, tasks, settings, num_mini_batches=config.num_mini_batches
    )


MetaOptimiserFactory = Callable[
    [TrainConfig, Learner, AbstractTaskDistribution], AbstractMetaOptimiser[Any]
]
META_OPTIMISERS: dict[str, MetaOptimiserFactory] = {"meta_gradient": _meta_gradient, "es": _es}


def make_meta_optimiser(
    config: TrainConfig, learner: Learner, tasks: AbstractTaskDistribution
) -> AbstractMetaOptimiser[Any]:
    """The meta-optimiser ``--use-es`` selects, with its flags."""
    if config.num_mini_batches < 1:
        raise ValueError(f"--num-mini-batches must be at least 1, got {config.num_mini_batches}")
    return META_OPTIMISERS["es" if config.use_es else "meta_gradient"](config, learner, tasks)


# --- Curricula and scores -----------------------------------------------------------------

ScoreFactory = Callable[[TrainConfig, AbstractTaskDistribution], AbstractScore]

SCORES: dict[str, ScoreFactory] = {
    "pvl": lambda c, t: PositiveValueLoss(c.gamma, c.gae_lambda),
    "l1_value_loss": lambda c, t: L1ValueLoss(c.gamma, c.gae_lambda),
    "maxmc": lambda c, t: MaxMC(c.gamma, c.gae_lambda),
    "alg_regret": lambda c, t: AlgorithmicRegret(
        num_updates=t.max_lifetime,
        eval_steps=t.eval_steps,
        episodes=c.score_episodes,
        rule=A2C(_a2c_config(c)),
    ),
}


def make_score(config: TrainConfig, tasks: AbstractTaskDistribution) -> AbstractScore:
    """The PLR score named by ``--score-function``."""
    if config.score_function not in SCORES:
        raise ValueError(
            f"unknown PLR score {config.score_function!r}; choose one of: {', '.join(SCORES)}"
        )
    if config.score_episodes < 1:
        raise ValueError(f"--score-episodes must be at least 1, got {config.score_episodes}")
    return SCORES[config.score_function](config, tasks)


def _plr(config: TrainConfig, tasks: AbstractTaskDistribution) -> AbstractCurriculum:
    return _settings(functools.partial(PLR, tasks, make_score(config, tasks)), config, PLR_FLAGS)


CurriculumFactory = Callable[[TrainConfig, AbstractTaskDistribution], AbstractCurriculum]
CURRICULA: dict[str, CurriculumFactory] = {
    "random": lambda c, t: DomainRandomisation(t),
    "frozen": lambda c, t: _settings(functools.partial(Frozen, t), c, FROZEN_FLAGS),
    "plr": _plr,
}


def make_curriculum(config: TrainConfig, tasks: AbstractTaskDistribution) -> AbstractCurriculum:
    """The curriculum ``--score-function`` selects: ``random``, ``frozen``, or PLR with the
    score of that name."""
    name = config.score_function
    if name in CURRICULA and name != "plr":
        return CURRICULA[name](config, tasks)
    if name in SCORES:
        return CURRICULA["plr"](config, tasks)
    choices = [n for n in CURRICULA if n != "plr"] + list(SCORES)
    raise ValueError(f"unknown --score-function {name!r}; choose one of: {', '.join(choices)}")


# --- The trainer --------------------------------------------------------------------------


def build_online_trainer(config: TrainConfig) -> OnlineTrainer:
    """The `lpgx.mgrl.OnlineTrainer` of ``--rule mgrl``; ``--env-steps``, when given, sets the
    number of windows."""
    settings = _settings(OnlineConfig, config, MGRL_FLAGS)
    env = make_vec_env(config)
    steps = config.train_steps
    if config.env_steps is not None:
        steps = max(1, -(-config.env_steps // settings.env_steps_per_window))
    return OnlineTrainer(
        env=env,
        config=settings,
        train_steps=steps,
        chunk_size=config.chunk_size,
        seeds=config.seeds,
        seed=config.seed,
    )


def build(config: TrainConfig) -> AbstractChunkedTrainer[Any]:
    """What `lpgx train` runs for `config`: an `OnlineTrainer` for ``--rule mgrl``, else the
    population `Trainer`."""
    if config.rule in ONLINE_RULES:
        return build_online_trainer(config)
    return build_trainer(config)


def build_trainer(config: TrainConfig) -> Trainer:
    """Turn `config` into a `Trainer`; every component validates its own flags here, before
    anything compiles."""
    if config.rule in ONLINE_RULES:
        raise ValueError(
            f"--rule {config.rule} is trained online, not by a population Trainer: use "
            "lpgx.compose.build (or build_online_trainer), or `lpgx train`"
        )
    tasks = make_tasks(config.env_mode)
    learner = make_learner(config, tasks)
    init_rule = make_rule(config)
    meta_opt = make_meta_optimiser(config, learner, tasks)
    curriculum = make_curriculum(config, tasks)
    return Trainer(
        tasks=tasks,
        init_rule=init_rule,
        meta_opt=meta_opt,
        curriculum=curriculum,
        num_agents=config.num_agents,
        train_steps=config.train_steps,
        chunk_size=config.chunk_size,
        seed=config.seed,
        stagger=config.stagger,
        eval_agents=config.eval_agents,
        eval_episodes=config.eval_episodes,
    )


# --- Presets ------------------------------------------------------------------------------

_QUICK = TrainConfig(
    env_mode="all_shortlife",
    train_steps=600,
    num_agents=8,
    num_mini_batches=1,
    env_workers=16,
    lpg_gru_width=64,
    lpg_learning_rate=1e-3,
    chunk_size=25,
    checkpoint_every=100,
    eval_agents=64,
)

# The reference's MGRL settings (64 environments × 5 steps, K = 3, Adam 7e-4 decayed to 0,
# meta-Adam 1e-3) on MinAtar Breakout, 1 M environment steps per run.
_MGRL = TrainConfig(
    env_mode="minatar:breakout",
    rule="mgrl",
    env_steps=1_000_000,
    env_workers=64,
    train_rollout_len=5,
    num_agent_updates=3,
    agent_policy_lr=7e-4,
    lpg_learning_rate=1e-3,
    chunk_size=50,
    checkpoint_every=500,
)

PRESETS: dict[str, tuple[str, TrainConfig]] = {
    "quick": ("small CPU run that shows learning in a few minutes on 2 cores", _QUICK),
    "lpg": (
        "the reference's LPG command: 512 agents, 16 mini-batches, 5000 steps, all_shortlife",
        TrainConfig(train_steps=5000, num_agents=512, num_mini_batches=16),
    ),
    "groove": (
        "the reference's GROOVE command: the lpg preset with PLR scored by algorithmic regret",
        TrainConfig(
            train_steps=5000, num_agents=512, num_mini_batches=16, score_function="alg_regret"
        ),
    ),
    "ta-lpg": (
        "the reference's TA-LPG command: ES, lifetime conditioning, lr 0.01, all_vrandlife",
        TrainConfig(
            env_mode="all_vrandlife",
            use_es=True,
            lifetime_conditioning=True,
            lpg_learning_rate=1e-2,
            num_agents=512,
            num_mini_batches=8,
            train_steps=2500,
            stagger=False,
            chunk_size=5,
            checkpoint_every=50,
        ),
    ),
    "ta-lpg-cpu": (
        "TA-LPG sized for a 2-core CPU: 8 antithetic pairs, 16 workers, GRU 64",
        replace(
            _QUICK,
            env_mode="all_vrandlife",
            use_es=True,
            lifetime_conditioning=True,
            lpg_learning_rate=1e-2,
            train_steps=30,
            stagger=False,
            chunk_size=5,
            checkpoint_every=10,
            eval_agents=32,
            es_num_eval_episodes=16,
        ),
    ),
    "groove-cpu": (
        "GROOVE sized for a 2-core CPU: the quick preset with alg_regret and a 256-level buffer",
        replace(
            _QUICK,
            train_steps=300,
            eval_agents=32,
            score_function="alg_regret",
            buffer_size=256,
            score_episodes=16,
        ),
    ),
    "mgrl": (
        "meta-gradient RL: A2C learning its own γ, λ, loss coefficients online (MinAtar)",
        _MGRL,
    ),
    "mgrl-lvc": (
        "mgrl with the LVC inner loss (log π as π/sg(π)): a lower-bias meta-gradient",
        replace(_MGRL, meta_differentiation="lvc"),
    ),
    "a2c-online": (
        "the A2C baseline of mgrl: the same loop with the meta-update off",
        replace(_MGRL, mgrl_meta_learn=False),
    ),
}
