"""Update rules (layer 3): the interface, A2C, and shared return computations."""

from . import estimators as estimators
from ._lirpg import IntrinsicReward as IntrinsicReward
from ._maml import PATTERNS as PATTERNS
from ._maml import MAMLInit as MAMLInit
from ._maml import pattern_flags as pattern_flags
from .a2c import A2C as A2C
from .base import AbstractUpdateRule as AbstractUpdateRule
from .base import LifetimeContext as LifetimeContext
from .lpg import LPG as LPG
from .returns import entropy as entropy
from .returns import gae as gae
from .returns import normalise as normalise
