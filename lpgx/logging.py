"""Optional metric sinks: TensorBoard (``lpgx[tensorboard]``) and Weights & Biases
(``lpgx[wandb]``). ``metrics.jsonl`` is always written by `lpgx.train.train`."""

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MetricSink", "tensorboard_sink", "wandb_sink"]

MetricSink = Callable[[dict[str, int | float]], None]


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ValueError(
            f"this sink needs the optional package {module!r}; install it with "
            f"`pip install 'lpgx[{extra}]'`."
        ) from e


def tensorboard_sink(logdir: Path) -> MetricSink:
    """Write every metric of every record as a TensorBoard scalar at its meta-step."""
    writer = _require("tensorboardX", "tensorboard").SummaryWriter(str(logdir))

    def sink(record: dict[str, int | float]) -> None:
        step = int(record["step"])
        for key, value in record.items():
            if key != "step":
                writer.add_scalar(key, value, step)
        writer.flush()

    return sink


def wandb_sink(project: str, config: dict[str, Any], entity: str | None = None) -> MetricSink:
    """Log every record to a Weights & Biases run (started here)."""
    wandb = _require("wandb", "wandb")
    run = wandb.init(project=project, entity=entity, config=config)

    def sink(record: dict[str, int | float]) -> None:
        run.log(record, step=int(record["step"]))

    return sink
