"""The keys of a study file (``benchmarks/*.toml``): for each section, the keys it takes,
each with the reader that checks its type and range and converts it (docs/study_files.md
is the reference for people; this module is the one for the loader).

A reader is ``(key, value) -> value``: it raises ``td_jax.strict``'s one-line ValueError
("search.reps must be an integer >= 1, got -3"), which ``suite_files`` prefixes with the
file's path. Keys are the suite's own field names (``engine.specs.Suite``,
``engine.control_specs.ControlSuite``), grouped in sections; the few renamed ones are in
``FIELD``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from td_jax import strict
from td_jax.engine.control_specs import METRICS
from td_jax.engine.specs import REPORTS, log_grid
from td_jax.rules.facts import STEP_UNITS
from td_jax.types import MODES

Reader = Callable[[str, Any], Any]
TRACKS = ("prediction", "control")
EXPECTED = ("faster", "slower")


def text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        strict.fail(None, key, value, "a string")
    return value


def choice(*options: str) -> Reader:
    def read(key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            strict.fail(None, key, value, f"one of {', '.join(map(repr, options))}")
        return value

    return read


def integer(minimum: int) -> Reader:
    return lambda key, value: strict.check_int(None, key, value, minimum)


def number(low: float = -math.inf, high: float = math.inf, *, open_low: bool = False,
           open_high: bool = False) -> Reader:  # fmt: skip
    """A finite number in the interval (a whole TOML integer is read as a float)."""

    def read(key: str, value: Any) -> float:
        x = strict.check_finite(None, key, value)
        if x < low or (open_low and x == low) or x > high or (open_high and x == high):
            left, right = "(" if open_low else "[", ")" if open_high else "]"
            strict.fail(None, key, value, f"in {left}{low:g}, {high:g}{right}")
        return x

    return read


POSITIVE = number(0.0, open_low=True)
NON_NEGATIVE = number(0.0)


# (key, value) -> bool, as every converter of the schema is called.
boolean = functools.partial(strict.check_bool, None)


def array(key: str, value: Any, allowed: str) -> list:
    if not isinstance(value, list) or not value:
        strict.fail(None, key, value, allowed)
    return value


def numbers(item: Reader = POSITIVE) -> Reader:
    """A non-empty array of numbers, each read by ``item``, as a tuple."""

    def read(key: str, value: Any) -> tuple[float, ...]:
        array(key, value, "a non-empty array of numbers")
        return tuple(item(f"{key}[{i}]", x) for i, x in enumerate(value))

    return read


def names(key: str, value: Any) -> tuple[str, ...]:
    """An array of strings (may be empty), as a tuple."""
    if not isinstance(value, list):
        strict.fail(None, key, value, "an array of strings")
    return tuple(text(f"{key}[{i}]", x) for i, x in enumerate(value))


def modules(key: str, value: Any) -> tuple[str, ...]:
    """``imports``: module names (``my_rewards``, ``pkg.sub``), as a tuple."""
    out = names(key, value)
    for i, name in enumerate(out):
        if not all(part.isidentifier() for part in name.split(".")):
            strict.fail(None, f"{key}[{i}]", name, "a module name (dotted identifiers)")
    return out


def seeds(key: str, value: Any) -> tuple[int, ...]:
    """Distinct seeds: an array of integers in [0, 2**32), or ``{start = a, stop = b}``
    (a, a + 1, ..., b - 1, as Python's range)."""
    if isinstance(value, Mapping):
        unknown = set(value) - {"start", "stop"}
        if unknown or set(value) != {"start", "stop"}:
            strict.fail(None, key, value, "an array of seeds or {start = a, stop = b}")
        start = strict.check_seed(None, f"{key}.start", value["start"])
        stop = strict.check_int(None, f"{key}.stop", value["stop"], start + 1, strict.SEED_LIMIT)
        return tuple(range(start, stop))
    array(key, value, "a non-empty array of seeds or {start = a, stop = b}")
    out = tuple(strict.check_seed(None, f"{key}[{i}]", s) for i, s in enumerate(value))
    if len(set(out)) != len(out):
        strict.fail(None, key, value, "distinct seeds")
    return out


def grid(key: str, value: Any) -> tuple[float, ...]:
    """Step sizes: an array of positive numbers, or ``{low, high, per_decade}`` (a log grid
    from low to high, ``engine.specs.log_grid``)."""
    if isinstance(value, Mapping):
        if set(value) != {"low", "high", "per_decade"}:
            strict.fail(None, key, value, "an array of step sizes or {low, high, per_decade}")
        low = POSITIVE(f"{key}.low", value["low"])
        high = number(low, open_low=True)(f"{key}.high", value["high"])
        return log_grid(low, high, integer(1)(f"{key}.per_decade", value["per_decade"]))
    return numbers()(key, value)


def band(key: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        strict.fail(None, key, value, "[low, high], two positive numbers")
    low, high = (POSITIVE(f"{key}[{i}]", x) for i, x in enumerate(value))
    if not low < high:
        strict.fail(None, key, value, "[low, high] with low < high")
    return low, high


def table(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        strict.fail(None, key, value, "a table")
    return dict(value)


def labels_table(key: str, value: Any) -> dict[str, str]:
    """A table of rule label -> rule label (``baselines``)."""
    return {k: text(f"{key}.{k}", v) for k, v in table(key, value).items()}


def reports(key: str, value: Any) -> tuple[str, ...]:
    """Reports added after the standard one (``engine.specs.REPORTS``), each named once."""
    out = names(key, value)
    for i, r in enumerate(out):
        if r not in REPORTS:
            strict.fail(None, f"{key}[{i}]", r, f"one of {', '.join(map(repr, REPORTS))}")
    if len(set(out)) != len(out):
        strict.fail(None, key, value, "distinct report names")
    return out


def metrics(key: str, value: Any) -> tuple[str, ...]:
    out = names(key, value)
    for i, m in enumerate(out):
        choice(*METRICS)(f"{key}[{i}]", m)
    return out


# Section -> {key: reader}; "" is the file's top level. Every section of a track's schema is
# optional except where ``REQUIRED`` names a key.
COMMON: dict[str, dict[str, Reader]] = {
    "": {
        "name": text,
        "description": text,
        "track": choice(*TRACKS),
        "baseline": text,
        "imports": modules,
    },
    "seeds": {"tuning": seeds, "evaluation": seeds},
    "horizons": {"num_steps": integer(1), "per_decade": integer(1)},
    "accuracy": {"eps_grid": numbers(), "eps_relative": boolean, "band": band},
    "search": {
        "constant_grid": grid,
        "harmonic_steps": numbers(),
        "harmonic_c": numbers(),
        "max_extensions": integer(0),
        "max_refinements": integer(0),
        "refine_within": number(1.0),
        "diagonals": boolean,
        "reselect_secondary": boolean,
        "candidates": integer(1),
        "coverage": number(0.0, 1.0, open_low=True),
    },  # fmt: skip
    "scoring": {
        "margin": NON_NEGATIVE,
        "fdr_q": number(0.0, 1.0, open_low=True, open_high=True),
        "reps": integer(1),
    },  # fmt: skip
    "controls": {"placebos": names, "nulls": names},
}
PREDICTION = COMMON | {
    "": COMMON[""] | {"mode": choice(*MODES), "baselines": labels_table, "reports": reports},
    "horizons": COMMON["horizons"] | {"by_env": table},
    "accuracy": COMMON["accuracy"] | {"min_visits": integer(0)},
    "search": COMMON["search"] | {"start_rows": numbers()},
}
CONTROL = COMMON | {"control": {"epsilon": number(0.0, 1.0), "metrics": metrics}}
SCHEMAS = {"prediction": PREDICTION, "control": CONTROL}
# The arrays of tables and the named rewards, read by ``suite_files`` (per track).
TABLES = {"prediction": ("rules", "tasks", "claims", "rewards"),
          "control": ("rules", "tasks", "rewards")}  # fmt: skip
REQUIRED = {"": ("name", "description"), "seeds": ("tuning", "evaluation"),
            "horizons": ("num_steps",), "accuracy": ("eps_grid",)}  # fmt: skip
# Keys whose suite field has another name.
FIELD = {("seeds", "tuning"): "tuning_seeds", ("seeds", "evaluation"): "eval_seeds",
         ("horizons", "by_env"): "horizons"}  # fmt: skip

RULE: dict[str, Reader] = {
    "label": text, "rule": text, "like": text, "hparams": table, "step_sizes": numbers(),
    "step_unit": choice(*STEP_UNITS), "step_scale": POSITIVE, "envs": names, "tasks": names,
    "tuning_seeds": seeds, "step_factor": POSITIVE, "note": text,
}  # fmt: skip
TASK_COMMON: dict[str, Reader] = {"label": text, "params": table, "each_reward": lambda k, v: v,
                                  "reward_param": text}  # fmt: skip
TASK = {
    "prediction": TASK_COMMON | {"env": text, "instances": seeds, "instance_param": text},
    "control": TASK_COMMON | {"mdp": text, "mode": choice(*MODES), "horizon": integer(1)},
}
CLAIM: dict[str, Reader] = {"text": text, "rule": text, "task": text,
                            "expected": choice(*EXPECTED)}  # fmt: skip


def read_table(key: str, value: Any, readers: Mapping[str, Reader],
               required: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """``value`` (a TOML table at ``key``) with each entry read by its reader; an unknown or
    missing key is an error naming it and what is allowed."""
    where = f"[{key}]" if key else "the top level"
    got = table(key or "file", value)
    for name in got:
        if name not in readers:
            raise ValueError(f"unknown key {_join(key, name)!r}; allowed in {where}: "
                             f"{', '.join(readers)}")  # fmt: skip
    for name in required:
        if name not in got:
            raise ValueError(f"missing key {_join(key, name)!r} (required in {where})")
    return {name: readers[name](_join(key, name), v) for name, v in got.items()}


def _join(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key
