"""Curricula (layer 5): domain randomisation, a frozen level set, and prioritised level replay
(PLR) over a `LevelBuffer` with pluggable scores (PVL, L1 value loss, MaxMC, GROOVE's
algorithmic regret)."""

from .base import AbstractCurriculum as AbstractCurriculum
from .base import DomainRandomisation as DomainRandomisation
from .base import LevelScores as LevelScores
from .base import select_tasks as select_tasks
from .base import stagger_lifetimes as stagger_lifetimes
from .buffer import TRANSFORMS as TRANSFORMS
from .buffer import LevelBuffer as LevelBuffer
from .buffer import Transform as Transform
from .buffer import eviction_slots as eviction_slots
from .buffer import replay_distribution as replay_distribution
from .buffer import sample_replay as sample_replay
from .plr import CURRICULUM_NAMES as CURRICULUM_NAMES
from .plr import PLR as PLR
from .plr import Frozen as Frozen
from .plr import FrozenState as FrozenState
from .plr import PLRState as PLRState
from .plr import make_curriculum as make_curriculum
from .scores import SCORE_NAMES as SCORE_NAMES
from .scores import AbstractScore as AbstractScore
from .scores import AlgorithmicRegret as AlgorithmicRegret
from .scores import L1ValueLoss as L1ValueLoss
from .scores import MaxMC as MaxMC
from .scores import PositiveValueLoss as PositiveValueLoss
from .scores import antagonist_return as antagonist_return
from .scores import make_score as make_score
from .scores import map_where as map_where
from .scores import train_antagonist as train_antagonist
