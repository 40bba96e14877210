"""Hyperparameters as frozen dataclasses (a leaf module: imports nothing from lpgx).

Frozen dataclasses are hashable, so a config can be a static argument of `jit` and a field
of an Equinox module marked ``static=True``.
"""

from dataclasses import dataclass, replace
from typing import Literal

__all__ = [
    "PRESETS",
    "A2CConfig",
    "AgentConfig",
    "ESConfig",
    "LPGConfig",
    "MetaGradientConfig",
    "TrainConfig",
]

Optimiser = Literal["sgd", "adam"]


@dataclass(frozen=True)
class AgentConfig:
    """How an agent is built, how it acts and how it is optimised.

    ``hidden=()`` gives the tabular agent (a table lookup, i.e. a linear layer without bias over
    the one-hot observation); otherwise an MLP with these hidden widths and ReLU. ``aux_lr`` is
    the learning rate of the agent's second head: the prediction vector ``y`` for LPG, the value
    critic for A2C. "sgd" clips each head's gradient to ``max_grad_norm`` separately; "adam"
    ignores ``max_grad_norm`` (as the reference does).
    """

    num_workers: int = 64
    rollout_len: int = 20
    hidden: tuple[int, ...] = ()
    optimiser: Optimiser = "sgd"
    policy_lr: float = 40.0
    aux_lr: float = 4.0
    max_grad_norm: float = 0.5

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.rollout_len < 1:
            raise ValueError(
                f"num_workers and rollout_len must be positive, got {self.num_workers} and "
                f"{self.rollout_len}"
            )
        if self.optimiser not in ("sgd", "adam"):
            raise ValueError(f"optimiser must be 'sgd' or 'adam', got {self.optimiser!r}")

    @classmethod
    def for_hidden(cls, hidden: tuple[int, ...], **overrides: object) -> "AgentConfig":
        """The reference's defaults for a body: tabular → SGD 40/4, MLP → Adam 1e-3."""
        if hidden:
            base = cls(hidden=hidden, optimiser="adam", policy_lr=1e-3, aux_lr=1e-3)
        else:
            base = cls()
        return replace(base, **overrides)  # pyright: ignore[reportArgumentType]


@dataclass(frozen=True)
class A2CConfig:
    """The hand-designed A2C rule (GROOVE's antagonist and baseline)."""

    gamma: float = 0.99
    gae_lambda: float = 0.95
    entropy_coeff: float = 0.01
    value_coeff: float = 1.0


@dataclass(frozen=True)
class LPGConfig:
    """The LPG network (reference defaults: backward GRU of 256 units, y of size 8)."""

    y_size: int = 8
    hidden: int = 256
    core: Literal["gru", "lstm"] = "gru"
    embedding_width: int = 16
    lifetime_conditioning: bool = False
    gamma: float = 0.99
    y_coeff: float = 0.5
    dtype: Literal["float32", "bfloat16"] = "float32"


@dataclass(frozen=True)
class MetaGradientConfig:
    """Meta-gradient training of a rule: K differentiable agent updates, then an A2C-style
    outer loss on a fresh rollout with a trained value critic (decision 1), regularisers,
    global-norm clipping (decision 6) and Adam."""

    num_agent_updates: int = 5
    learning_rate: float = 1e-4
    max_grad_norm: float = 0.5
    policy_entropy_coeff: float = 5e-2
    y_entropy_coeff: float = 1e-3
    policy_l2_coeff: float = 5e-3
    y_l2_coeff: float = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95


@dataclass(frozen=True)
class ESConfig:
    """Evolution strategy on a rule's arrays (TA-LPG's meta-optimiser, the reference's
    ``--use_es``): OpenAI-ES with antithetic pairs that share a task, an initial agent and
    environment keys; fitness is the mean return of an agent trained for its whole lifetime.

    The learning rate decays ×``lrate_decay`` per generation down to ``lrate_limit``; σ does
    the same with ``sigma_decay`` / ``sigma_limit`` (constant 0.1 by default, as in the
    reference). ``b1`` is Adam's β₁ (the reference's evosax Adam uses 0.99). ``shaping`` is
    ``"pairwise"`` (the reference: the better member of each pair scores 1, the other 0, ties go
    to the −ε member) or ``"centered_rank"``. ``init="network"`` starts the ES mean at the
    rule's normal initialisation (decision 7); ``"zeros"`` reproduces the reference.
    """

    learning_rate: float = 1e-2
    lrate_decay: float = 0.999
    lrate_limit: float = 1e-5
    b1: float = 0.99
    optimiser: Optimiser = "adam"
    sigma_init: float = 0.1
    sigma_decay: float = 1.0
    sigma_limit: float = 0.1
    num_eval_episodes: int = 64
    shaping: Literal["pairwise", "centered_rank"] = "pairwise"
    init: Literal["network", "zeros"] = "network"

    def __post_init__(self) -> None:
        problems = []
        if self.learning_rate <= 0 or self.lrate_limit < 0:
            problems.append("learning_rate must be positive and lrate_limit non-negative")
        if not 0 < self.lrate_decay <= 1 or not 0 < self.sigma_decay <= 1:
            problems.append("lrate_decay and sigma_decay must lie in (0, 1]")
        if self.sigma_init <= 0 or self.sigma_limit <= 0:
            problems.append("sigma_init and sigma_limit must be positive")
        if not 0 <= self.b1 < 1:
            problems.append(f"b1 must lie in [0, 1), got {self.b1}")
        if self.num_eval_episodes < 1:
            problems.append("num_eval_episodes must be at least 1")
        if self.optimiser not in ("sgd", "adam"):
            problems.append(f"optimiser must be 'sgd' or 'adam', got {self.optimiser!r}")
        if self.shaping not in ("pairwise", "centered_rank"):
            problems.append(f"shaping must be 'pairwise' or 'centered_rank', got {self.shaping!r}")
        if self.init not in ("network", "zeros"):
            problems.append(f"init must be 'network' or 'zeros', got {self.init!r}")
        if problems:
            raise ValueError("invalid ES config: " + "; ".join(problems))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a meta-training run. Field names follow the GROOVE reference's
    command-line options (``--num-agents``, ``--lpg-learning-rate``, …)."""

    env_mode: str = "all_shortlife"
    """Level set to meta-train on (`lpgx levels list`)."""
    seed: int = 0
    """Seed of the whole run (rule init, tasks, agents); a run is reproducible from it."""
    train_steps: int = 30000
    """Number of meta-steps."""
    num_agents: int = 512
    """Agents trained in parallel; the meta-gradient is their mean."""
    num_mini_batches: int = 16
    """Agents are processed in this many sequential vmapped groups; must divide num_agents."""
    env_workers: int = 64
    """Parallel environments per agent."""
    train_rollout_len: int = 20
    """Steps per rollout (one agent update per rollout)."""
    num_agent_updates: int = 5
    """K: differentiable agent updates per meta-step."""
    stagger: bool = True
    """Draw first-generation lifetimes uniformly in [1, N] so agents do not reset together."""
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
    """Discount fed to the LPG and used by the value critic's GAE."""
    gae_lambda: float = 0.95
    """λ of the value critic's GAE."""
    lpg_learning_rate: float = 1e-4
    """Adam learning rate of the meta-optimiser."""
    lpg_max_grad_norm: float = 0.5
    """Global-norm clip of the meta-gradient."""
    lpg_policy_entropy_coeff: float = 5e-2
    """β₀: weight of the agent policy's entropy bonus in the outer loss."""
    lpg_target_entropy_coeff: float = 1e-3
    """β₁: weight of the prediction vector's entropy bonus."""
    lpg_policy_l2_coeff: float = 5e-3
    """β₂: weight of mean(π̂²)."""
    lpg_target_l2_coeff: float = 1e-3
    """β₃: weight of mean(Σŷ²)."""
    chunk_size: int = 25
    """Meta-steps per compiled chunk; metrics, progress and checkpoints happen between chunks."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many meta-steps (and always at the end)."""
    eval_agents: int = 32
    """Agents trained from scratch on held-out levels by the initial and final rule."""
    eval_episodes: int = 16
    """Evaluation episodes per held-out agent."""
    devices: int | None = None
    """Devices to spread the agents over (default: all visible devices)."""
    # Curriculum (GROOVE's level sampler)
    score_function: Literal["random", "frozen", "pvl", "l1_value_loss", "maxmc", "alg_regret"] = (
        "random"
    )
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
    # Evolution strategies (TA-LPG)
    use_es: bool = False
    """Meta-train by evolution strategies (antithetic pairs; --lpg-learning-rate is ES's)."""
    es_lrate_decay: float = 0.999
    """ES learning-rate decay per generation."""
    es_lrate_limit: float = 1e-5
    """Floor of the decaying ES learning rate."""
    es_sigma_init: float = 0.1
    """σ of the ES perturbations."""
    es_num_eval_episodes: int = 64
    """Episodes behind each candidate's fitness."""
    es_shaping: Literal["pairwise", "centered_rank"] = "pairwise"
    """Fitness shaping: pairwise (the winner of each antithetic pair scores 1) or centered_rank."""
    es_init: Literal["network", "zeros"] = "network"
    """ES mean at the start: the rule's initialisation, or zeros (the reference)."""

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "train_steps",
            "num_agents",
            "num_mini_batches",
            "env_workers",
            "train_rollout_len",
            "num_agent_updates",
            "chunk_size",
            "checkpoint_every",
            "lpg_gru_width",
            "lpg_target_width",
            "lpg_embedding_net_width",
            "eval_agents",
            "eval_episodes",
        ):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be at least 1")
        if self.num_agents % max(self.num_mini_batches, 1):
            problems.append(
                f"--num-agents {self.num_agents} is not divisible by --num-mini-batches "
                f"{self.num_mini_batches}; pick a number of mini-batches that divides it"
            )
        if not 0.0 <= self.p_replay <= 1.0:
            problems.append(f"--p-replay must be in [0, 1], got {self.p_replay}")
        if self.buffer_size < self.num_agents and self.score_function != "random":
            problems.append(
                f"--buffer-size {self.buffer_size} must hold at least --num-agents "
                f"{self.num_agents} levels"
            )
        if self.lpg_core not in ("gru", "lstm"):
            problems.append(f"--lpg-core must be gru or lstm, got {self.lpg_core!r}")
        if self.lpg_dtype not in ("float32", "bfloat16"):
            problems.append(f"--lpg-dtype must be float32 or bfloat16, got {self.lpg_dtype!r}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    def lpg(self) -> LPGConfig:
        return LPGConfig(
            y_size=self.lpg_target_width,
            hidden=self.lpg_gru_width,
            core=self.lpg_core,
            embedding_width=self.lpg_embedding_net_width,
            lifetime_conditioning=self.lifetime_conditioning,
            gamma=self.gamma,
            y_coeff=self.lpg_agent_target_coeff,
            dtype=self.lpg_dtype,
        )

    def es(self) -> ESConfig:
        return ESConfig(
            learning_rate=self.lpg_learning_rate,
            lrate_decay=self.es_lrate_decay,
            lrate_limit=self.es_lrate_limit,
            sigma_init=self.es_sigma_init,
            num_eval_episodes=self.es_num_eval_episodes,
            shaping=self.es_shaping,
            init=self.es_init,
        )

    def meta_gradient(self) -> MetaGradientConfig:
        return MetaGradientConfig(
            num_agent_updates=self.num_agent_updates,
            learning_rate=self.lpg_learning_rate,
            max_grad_norm=self.lpg_max_grad_norm,
            policy_entropy_coeff=self.lpg_policy_entropy_coeff,
            y_entropy_coeff=self.lpg_target_entropy_coeff,
            policy_l2_coeff=self.lpg_policy_l2_coeff,
            y_l2_coeff=self.lpg_target_l2_coeff,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
        )


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

PRESETS: dict[str, tuple[str, TrainConfig]] = {
    "quick": ("small CPU run that shows learning in about ten minutes on 2 cores", _QUICK),
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
}
