"""Meta-gradient bias experiments (layer 6): sampled meta-gradients against exact ones, on
tabular MDPs (MAML-RL, LIRPG), on the iterated prisoner's dilemma (LOLA-DiCE) and for the LPG.

`experiment_config` gives the reference's sweeps (Theoretical-GMRL's tabular scripts) by name,
`run_tabular` runs one as vectorised compiled calls, `plot_tabular` draws it; the metrics are
plain functions. `run_lpg_bias` measures the LPG's own meta-gradient, differentiated in each of
the ways `MetaGradient` offers, against a large-sample reference; `run_lola` runs LOLA-DiCE
variants (`LOLA_VARIANTS`) with every seed in one compiled call, on the DiCE losses
`dice_objective` and `off_policy_dice_objective` (whose baseline `value_loss` trains).
"""

from ._dice import dice_objective as dice_objective
from ._dice import off_policy_dice_objective as off_policy_dice_objective
from ._dice import value_loss as value_loss
from ._lola import LOLA_VARIANTS as LOLA_VARIANTS
from ._lola import Estimate as Estimate
from ._lola import LolaConfig as LolaConfig
from ._lola import LolaMetrics as LolaMetrics
from ._lola import LolaState as LolaState
from ._lola import compile_lola as compile_lola
from ._lola import exact_lola_meta_gradient as exact_lola_meta_gradient
from ._lola import get_lola_variant as get_lola_variant
from ._lola import lola_init as lola_init
from ._lola import lola_iteration as lola_iteration
from ._lola import pearson as pearson
from ._lola import run_lola as run_lola
from ._lpg import LPGBiasConfig as LPGBiasConfig
from ._lpg import run_lpg_bias as run_lpg_bias
from ._plot import plot_tabular as plot_tabular
from ._tabular import EXPERIMENTS as EXPERIMENTS
from ._tabular import TabularBiasConfig as TabularBiasConfig
from ._tabular import correlation as correlation
from ._tabular import experiment_config as experiment_config
from ._tabular import grad_mse as grad_mse
from ._tabular import loglog_slope as loglog_slope
from ._tabular import run_tabular as run_tabular
from ._tabular import spread as spread
from ._tabular import squared_bias as squared_bias
from ._tabular import summary_rows as summary_rows
