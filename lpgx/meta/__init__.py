"""Meta-optimisers (layer 5): change η so that agents trained by the rule do well."""

from ._base import AbstractMetaOptimiser as AbstractMetaOptimiser
from ._base import MetaState as MetaState
from ._es import ESAgents as ESAgents
from ._es import ESConfig as ESConfig
from ._es import EvolutionStrategy as EvolutionStrategy
from ._es import pairwise_fitness_shaping_fn as pairwise_fitness_shaping_fn
from ._metagradient import MetaAgent as MetaAgent
from ._metagradient import MetaGradient as MetaGradient
from ._metagradient import MetaGradientConfig as MetaGradientConfig
