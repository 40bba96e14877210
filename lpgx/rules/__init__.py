"""Update rules (layer 3): the interface, A2C, and shared return computations."""

from .a2c import A2C as A2C
from .base import AbstractUpdateRule as AbstractUpdateRule
from .base import LifetimeContext as LifetimeContext
from .lpg import LPG as LPG
from .returns import entropy as entropy
from .returns import gae as gae
from .returns import normalise as normalise
