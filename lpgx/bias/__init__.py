"""Meta-gradient bias experiments (layer 6): exact versus sampled meta-gradients on tabular MDPs.

`experiment_config` gives the reference's sweeps (spec §2–3) by name, `run_tabular` runs one as
vectorised compiled calls, `plot_tabular` draws it; the metrics are plain functions.
`run_lpg_bias` measures the LPG's own meta-gradient, differentiated in each of the ways
`MetaGradient` offers, against a large-sample reference.
"""

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
