"""`lpgx train --help`: the flags grouped by the component they configure, and the presets
with what each is for and how long it takes.

The flag names, metavars and texts are tyro's own (from the parser it builds for
`lpgx_cli.train.TrainArgs`), so the help never disagrees with what the parser accepts; only
the grouping is added here. A flag belongs to the first group whose table holds its field:
the component tables are `lpgx.compose`'s ``*_FLAGS`` (what each component reads), and the few
fields no component reads are placed by `_EXTRA`. `tests/test_help.py` checks that every flag
is shown exactly once.
"""

import warnings
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lpgx.compose import (
    A2C_FLAGS,
    AGENT_FLAGS,
    ES_FLAGS,
    FROZEN_FLAGS,
    LPG_FLAGS,
    META_GRADIENT_FLAGS,
    MGRL_FLAGS,
    PLR_FLAGS,
    PRESETS,
    TrainConfig,
)

__all__ = ["GROUPS", "PRESET_TIMES", "flag_groups", "print_train_help"]

# Fields read by no single component, placed by hand (group title -> fields).
_EXTRA: dict[str, tuple[str, ...]] = {
    "tasks": (
        "env_mode",
        "seed",
        "seeds",
        "train_steps",
        "env_steps",
        "num_agents",
        "num_mini_batches",
        "stagger",
    ),
    "rule": ("rule",),
    "es": ("use_es",),
    "curriculum": ("score_function", "score_episodes"),
    "run": (
        "chunk_size",
        "checkpoint_every",
        "eval_agents",
        "eval_episodes",
        "eval_on",
        "eval_every",
        "eval_on_agents",
        "eval_on_lifetime",
        "devices",
    ),
}

# Groups in the order shown: (key, title, component tables).
GROUPS: tuple[tuple[str, str, tuple[dict[str, str], ...]], ...] = (
    ("tasks", "Tasks and population", ()),
    ("agents", "Agents: the learners the rule trains", (AGENT_FLAGS,)),
    ("rule", "Update rule: the LPG being meta-learned (--rule lpg)", (LPG_FLAGS,)),
    ("mg", "Meta-gradient: the default meta-optimiser", (META_GRADIENT_FLAGS,)),
    ("es", "Evolution strategies: TA-LPG's meta-optimiser (--use-es)", (ES_FLAGS,)),
    ("curriculum", "Curriculum: which levels agents train on", (PLR_FLAGS, FROZEN_FLAGS)),
    ("a2c", "A2C: --rule a2c, and GROOVE's antagonist", (A2C_FLAGS,)),
    ("mgrl", "MGRL: online meta-learned γ, λ and coefficients (--rule mgrl)", (MGRL_FLAGS,)),
    ("run", "The run: chunks, checkpoints, evaluation, logging", ()),
)

# Flags longer than this get their own line, with the help on the next.
_FLAG_WIDTH = 30

# What each preset costs, as measured (machine named); see README.md and benchmarks/RESULTS.md.
PRESET_TIMES: dict[str, str] = {
    "quick": "1.1 min on a 2-core virtual machine (2026-12-08, README)",
    "ta-lpg-cpu": "4.6 min on 2 shared CPU cores (AMD EPYC, load ≈ 8)",
    "groove-cpu": "not timed yet (a CPU job: 300 meta-steps)",
    "lpg": "GPU job; not timed yet (hours on a CPU)",
    "groove": "GPU job; not timed yet (hours on a CPU)",
    "ta-lpg": "GPU job; not timed yet (days on a CPU)",
    "mgrl": "1 M steps not timed; 3 seeds × 120 k: 6.6 min on 2 CPU cores (load ≈ 13)",
    "mgrl-lvc": "1 M steps not timed; 3 seeds × 120 k: 7.5 min on 2 CPU cores (load ≈ 15)",
    "a2c-online": "1 M steps not timed; 3 seeds × 120 k: 2.0 min on 2 CPU cores (load ≈ 13)",
}


def flag_groups() -> dict[str, list[str]]:
    """Each group's `TrainConfig` fields, every field in exactly one group."""
    fields = [f for f in TrainConfig.__dataclass_fields__]
    placed: dict[str, list[str]] = {key: [] for key, _, _ in GROUPS}
    seen: set[str] = set()
    for key, _, tables in GROUPS:
        wanted = set(_EXTRA.get(key, ()))
        for table in tables:
            wanted |= set(table.values())
        for field in fields:  # in TrainConfig's order
            if field in wanted and field not in seen:
                placed[key].append(field)
                seen.add(field)
    missing = [f for f in fields if f not in seen]
    if missing:
        raise AssertionError(f"TrainConfig fields in no help group: {missing}")
    return placed


def _actions(default: Any) -> dict[str, Any]:
    """tyro's argparse actions for `lpgx train`, by field name (``config.x`` or ``x``), from
    its arguments' dataclass (`lpgx_cli.train.TrainArgs`, the type of `default`)."""
    import tyro

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        parser = tyro.extras.get_parser(type(default), default=default)
    out = {}
    for action in parser._actions:
        if action.dest == "help":
            continue
        out[action.dest.removeprefix("config.").replace("-", "_")] = action
    return out


def _flag_text(action: Any) -> Text:
    names = " / ".join(action.option_strings)
    metavar = action.metavar if action.nargs != 0 else None
    text = Text(names, style="bold cyan")
    if metavar:
        text.append(f" {metavar}", style="dim")
    return text


def _help_text(action: Any) -> Text:
    """tyro's help of one flag on one line (docstrings wrap in the source), without markup."""
    return Text(" ".join((action.help or "").split()))


def print_train_help(console: Console, preset: str, default: Any) -> None:
    """Print `lpgx train --help` for `preset` (its values are the defaults shown)."""
    console.print(
        "[bold]usage:[/bold] lpgx train [--preset NAME] [--out DIR] [--resume] [FLAGS]\n\n"
        "Meta-train an update rule (LPG by default) on a level set, then train fresh agents "
        "with the initial and the learned rule on held-out levels and compare them. Flags "
        "keep the GROOVE reference's names. Defaults below are the "
        f"[bold]{preset}[/bold] preset's.",
        highlight=False,
    )
    presets = Table(title="Presets (--preset NAME)", box=box.SIMPLE_HEAD, title_justify="left")
    presets.add_column("name", style="bold", no_wrap=True)
    presets.add_column("what it is for")
    presets.add_column("time", max_width=26)
    for name, (description, _) in PRESETS.items():
        presets.add_row(name, description, PRESET_TIMES.get(name, "not timed"))
    console.print(presets)

    actions = _actions(default)
    groups = flag_groups()
    # TrainArgs' own options (--out, --resume…) end the "run" group.
    own = [name for name in actions if name not in TrainConfig.__dataclass_fields__]
    groups["run"] = groups["run"] + own
    for key, title, _ in GROUPS:
        rows = [(_flag_text(actions[f]), _help_text(actions[f])) for f in groups[key]]
        if key == "run":
            rows.append(
                (
                    Text("--preset", style="bold cyan").append(" NAME", style="dim"),
                    Text(
                        "Start from this preset (the table above); flags given override it. "
                        "(default: quick)"
                    ),
                )
            )
            rows.append((Text("-h / --help", style="bold cyan"), Text("Show this help.")))
        console.print(f"\n[bold underline]{title}[/bold underline]")
        _print_rows(console, rows)


def _print_rows(console: Console, rows: list[tuple[Text, Text]]) -> None:
    """Flags and their help in two aligned columns; a flag too long for its column gets a line
    of its own (never cropped) and its help goes on the next."""

    def table() -> Table:
        t = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
        t.add_column("flag", no_wrap=True, width=_FLAG_WIDTH)
        t.add_column("help", ratio=1)
        return t

    current = table()
    for flag, text in rows:
        if len(flag) > _FLAG_WIDTH:
            if current.row_count:
                console.print(current)
                current = table()
            console.print(flag, soft_wrap=True)
            flag = Text("")
        current.add_row(flag, text)
    if current.row_count:
        console.print(current)
