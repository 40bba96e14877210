"""Hyperparameters as frozen dataclasses (a leaf module: imports nothing from lpgx).

Frozen dataclasses are hashable, so a config can be a static argument of `jit` and a field
of an Equinox module marked ``static=True``.
"""

from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["A2CConfig", "AgentConfig"]

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
