"""Meta-optimisers (layer 5): change η so that agents trained by the rule do well."""

from .base import AbstractMetaOptimiser as AbstractMetaOptimiser
from .base import MetaState as MetaState
from .es import ESAgents as ESAgents
from .es import EvolutionStrategy as EvolutionStrategy
from .metagradient import MetaAgent as MetaAgent
from .metagradient import MetaGradient as MetaGradient
