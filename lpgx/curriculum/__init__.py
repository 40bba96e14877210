"""Curricula (layer 5): domain randomisation, a frozen level set, and prioritised level replay
(PLR) over a `LevelBuffer` with pluggable scores, each owning its per-level cache (PVL, L1 value
loss, MaxMC, GROOVE's algorithmic regret)."""

from ._base import AbstractCurriculum as AbstractCurriculum
from ._base import DomainRandomisation as DomainRandomisation
from ._base import LevelScores as LevelScores
from ._base import select_tasks as select_tasks
from ._base import stagger_lifetimes as stagger_lifetimes
from ._buffer import TRANSFORMS as TRANSFORMS
from ._buffer import LevelBuffer as LevelBuffer
from ._buffer import Transform as Transform
from ._buffer import eviction_slots as eviction_slots
from ._buffer import replay_distribution as replay_distribution
from ._buffer import sample_replay as sample_replay
from ._plr import PLR as PLR
from ._plr import Frozen as Frozen
from ._plr import FrozenState as FrozenState
from ._plr import PLRState as PLRState
from ._scores import SCORE_NAMES as SCORE_NAMES
from ._scores import AbstractCriticScore as AbstractCriticScore
from ._scores import AbstractScore as AbstractScore
from ._scores import AlgorithmicRegret as AlgorithmicRegret
from ._scores import AntagonistCache as AntagonistCache
from ._scores import L1ValueLoss as L1ValueLoss
from ._scores import MaxMC as MaxMC
from ._scores import PositiveValueLoss as PositiveValueLoss
from ._scores import antagonist_return as antagonist_return
from ._scores import train_antagonist as train_antagonist
