"""Update rules (layer 3): the interface, A2C, and shared return computations."""

from . import estimators as estimators
from ._a2c import A2C as A2C
from ._a2c import A2CConfig as A2CConfig
from ._base import DIFFERENTIATIONS as DIFFERENTIATIONS
from ._base import AbstractUpdateRule as AbstractUpdateRule
from ._base import Differentiation as Differentiation
from ._base import LifetimeContext as LifetimeContext
from ._lirpg import IntrinsicReward as IntrinsicReward
from ._lpg import LPG as LPG
from ._lpg import LPGConfig as LPGConfig
from ._maml import PATTERNS as PATTERNS
from ._maml import MAMLInit as MAMLInit
from ._maml import pattern_flags as pattern_flags
from ._returns import entropy as entropy
from ._returns import gae as gae
from ._returns import normalise as normalise
