"""Step-size configurations in each rule's units, selection per accuracy, interior grids.

A configuration is a constant step alpha, or the harmonic decay alpha0 / (1 + alpha0 t / d)
(``td_jax.run``'s ``decay``) with d = c * num_states * unit: about c * unit / (visits of the
state) late on, so c = 1 is a running average for TD. With alpha0 fixed at the largest
constant step the family is one-dimensional in c and has no ridge (alpha0 and d trade off
once alpha0 t / d >> 1); c -> inf is the constant step alpha0, which the grid holds.

Grids are written in the rule's own units and multiplied by the task's unit: 1 for rules
whose step is a fraction of the error (TD), the return scale for sign-driven rules (QTD),
which move at most alpha in return units per update.

For every (rule, task, weighting, eps) the configuration with the smallest N(eps) on the
tuning seeds' mean curve is selected (near-ties: a fixed preference, see ``select``). A
selection on the edge of its grid is a defect (SCIENCE.md section 7): ``edge_of`` finds
them and ``extend`` widens the grid past them, until every selection is interior or the
suite's extension budget is spent. Then an edge selection with an interior configuration
within the suite's margin of it takes that configuration (the optimum is flat there; the
manifest lists these as ``flat_edge_cells``); what is left is counted as ``edge_cells``
and not called.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from td_jax.analysis import sample_complexity as sc
from td_jax.engine.specs import RuleSpec, Suite
from td_jax.runner.metrics import return_scale


class Config(NamedTuple):
    """One step-size configuration in the rule's units (family, alpha, c)."""

    family: str  # "constant" or "harmonic"
    alpha: float  # the step (constant) or alpha0 (harmonic), in the rule's units
    c: float  # harmonic: decay scale d = c * num_states * unit; constant: inf

    def absolute(self, unit: float, num_states: int) -> tuple[float, float]:
        """(step size, decay) as ``td_jax.run`` takes them."""
        d = np.inf if self.family == "constant" else self.c * num_states * unit
        return float(np.float32(self.alpha * unit)), float(d)

    def label(self) -> str:
        if self.family == "constant":
            return "constant"
        return f"harmonic(c={self.c:g})"


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def initial_configs(spec: RuleSpec, suite: Suite) -> list[Config]:
    """The rule's starting grid: constant steps, then the harmonic family."""
    k = spec.scale
    if k is None:
        raise ValueError(f"rule {spec.label!r}: its grid scale is unresolved (RuleSpec.resolved)")
    constant = spec.step_sizes or suite.constant_grid
    out = [Config("constant", _round(k * a), np.inf) for a in constant]
    # c scales with the step too, so that a rule at k times the step with k times the decay
    # scale is, in effect, the same schedule (d = c * S * unit).
    out += [
        Config("harmonic", _round(k * a), _round(k * c))
        for a in suite.harmonic_steps
        for c in suite.harmonic_c
    ]
    return out


def unit_scale(
    spec: RuleSpec, true_values: np.ndarray, variances: np.ndarray, visits, spread=None
) -> float:
    """1, or for return-unit rules the RMS return under the visit weights (3 digits).

    Where a return has no finite variance (Student t with df <= 2) its spread is taken
    from ``spread`` (f[S], e.g. the interquartile range / 1.349, a Gaussian's std) instead.
    """
    if spec.unit is None:
        raise ValueError(f"rule {spec.label!r}: its step unit is unresolved (RuleSpec.resolved)")
    if spec.unit == "fraction":
        return 1.0
    try:
        rms = return_scale(true_values, variances, visits, spread)
    except ValueError as err:
        raise ValueError(f"rule {spec.label!r}: {err}") from None
    return _round(float(f"{max(rms, 1e-6):.3g}"))


class Selection(NamedTuple):
    config: Config | None  # the configuration evaluated (None: no grid at all)
    n_tuning: float  # its N(eps) on the tuning seeds' mean curve (nan: none reached eps)
    edge: str  # "" or which edge ("alpha low", "alpha high", "c low", "c high")
    reached: bool = True  # False: no configuration reached eps on the tuning seeds; the
    # one with the lowest final error is evaluated, so that the cell is censored, not lost
    flat: str = ""  # the edge whose selection was replaced by an interior configuration
    # within ``flat`` of it once the extension budget was spent (a flat optimum)


def family_grid(configs: list[Config], family: str) -> tuple[np.ndarray, np.ndarray]:
    sub = [c for c in configs if c.family == family]
    return np.unique([c.alpha for c in sub]), np.unique([c.c for c in sub])


def edge_of(config: Config, configs: list[Config]) -> str:
    """Which edge of its family's grid ``config`` (one of ``configs``) sits on ('' if
    interior): the smallest or largest alpha among configurations of its c, or (harmonic)
    the smallest or largest c among those of its alpha."""
    return edges_of([config, *configs])[0]


def edges_of(configs: list[Config]) -> list[str]:
    """``edge_of`` of every configuration of ``configs`` at once (one pass to group the
    grid, instead of one per configuration: a refined cell holds hundreds)."""
    alphas: dict[str, set] = {}
    cs: dict[str, set] = {}
    by_c: dict[tuple[str, float], list[float]] = {}
    by_alpha: dict[float, list[float]] = {}
    for c in configs:
        alphas.setdefault(c.family, set()).add(c.alpha)
        cs.setdefault(c.family, set()).add(c.c)
        by_c.setdefault((c.family, c.c), []).append(c.alpha)
        if c.family == "harmonic":
            by_alpha.setdefault(c.alpha, []).append(c.c)
    span_c = {key: (min(v), max(v)) for key, v in by_c.items()}
    span_a = {key: (min(v), max(v)) for key, v in by_alpha.items()}
    out = []
    for c in configs:
        lo, hi = span_c[(c.family, c.c)]
        several = len(alphas[c.family]) > 1
        if c.alpha <= lo and several:
            out.append("alpha low")
        elif c.alpha >= hi and several:
            out.append("alpha high")
        elif c.family == "harmonic" and len(cs[c.family]) > 1 and c.c <= span_a[c.alpha][0]:
            out.append("c low")
        elif c.family == "harmonic" and len(cs[c.family]) > 1 and c.c >= span_a[c.alpha][1]:
            out.append("c high")
        else:
            out.append("")
    return out


def preference(config: Config) -> tuple:
    """Fixed order among near-ties: constant steps first, then the smaller step, then the
    slower decay (larger c). Fixed, so two rules that are the same up to float rounding
    pick the same configuration."""
    return (config.family != "constant", config.alpha, -config.c)


def tie_key(config: Config, edge: str) -> tuple:
    """The order among near-ties (``select``, and the re-selection bootstrap's candidates):
    an interior configuration before one on an edge (``edge``: ``edge_of``'s answer), then
    ``preference``."""
    return (edge != "", preference(config))


def select(
    steps: np.ndarray,
    curves: dict[Config, np.ndarray],
    eps: np.ndarray,
    tie: float = 0.0,
    flat: float | None = None,
) -> list[Selection]:
    """Per eps, the configuration with the smallest N(eps) on the mean curves given.

    Configurations within a factor ``1 + tie`` of the smallest N count as tied; among them
    an interior one is preferred to one on an edge (an edge selection would extend the grid
    for no gain), then the first in a fixed order (``preference``): an argmin over a flat
    optimum would otherwise flip between near-equal configurations on float-level
    differences, and a flip is a difference on the evaluation seeds that no rule caused.
    With ``flat`` (given once the extension budget is spent), a selection still on an edge
    is replaced by the best interior configuration within a factor ``1 + flat`` of it,
    recorded in ``Selection.flat``: the objective is flat to that tolerance across the
    extended grid, so the optimum is not beyond it. Where no configuration reaches eps, the
    one with the lowest final error is returned with ``reached=False`` (its evaluation is
    then a censored cell, reported as such).

    Args:
      steps: i64[C]. curves: ``{config: f64[C]}`` tuning-seed mean curves. eps: f[E].
      tie: the relative tolerance of a tie (e.g. half the suite's margin).
      flat: the relative tolerance of a flat optimum at an edge (e.g. the suite's margin).
    """
    configs = list(curves)
    mat = np.stack([curves[c] for c in configs])  # [K, C]
    n = sc.crossing_times(steps, mat, eps)  # [K, E]
    final = np.where(np.isfinite(mat[:, -1]), mat[:, -1], np.inf)
    edges = edges_of(configs)
    out = []
    for e in range(len(eps)):
        score = np.where(np.isfinite(n[:, e]), n[:, e], np.inf)
        if not np.isfinite(score).any():
            best = int(np.argmin(final)) if np.isfinite(final).any() else 0
            out.append(Selection(configs[best], float("nan"), "", reached=False))
            continue
        near = np.flatnonzero(score <= score.min() * (1.0 + tie))
        best = min(near, key=lambda i: tie_key(configs[i], edges[i]))
        resolved = ""
        if edges[best] and flat is not None:
            inner = np.flatnonzero((score <= score[best] * (1.0 + flat)) & (np.array(edges) == ""))
            if inner.size:
                resolved = edges[best]
                best = int(min(inner, key=lambda i: (score[i], preference(configs[i]))))
        out.append(Selection(configs[best], float(n[best, e]), edges[best], flat=resolved))
    return out


def extend(configs: list[Config], edges: set[tuple[str, str, float, float]]) -> list[Config]:
    """New configurations two grid points past every edge in ``edges``.

    Each edge is ``(family, which, alpha, c)``: the selected configuration and the edge it
    is on. Steps and c extend geometrically at the grid's own ratio (or 10^(1/3)).
    """
    new: set[Config] = set()
    for family, which, _alpha, _c in edges:
        alphas, cs = family_grid(configs, family)
        axis = alphas if which.startswith("alpha") else cs
        ratio = float(np.exp(np.mean(np.diff(np.log(axis))))) if axis.size > 1 else 10 ** (1 / 3)
        grow = ratio if which.endswith("high") else 1.0 / ratio
        start = axis.max() if which.endswith("high") else axis.min()
        points = [_round(start * grow**k) for k in (1, 2)]
        if which.startswith("alpha"):
            c_values = cs if family == "harmonic" else [np.inf]
            new |= {Config(family, a, cv) for a in points for cv in c_values}
        else:
            new |= {Config(family, a, cv) for a in alphas for cv in points}
    return sorted(new - set(configs), key=lambda c: (c.family, c.c, c.alpha))


def unit_of(unit: Any, label: str) -> float:
    """The step unit of task ``label`` in ``unit`` (a prediction or control unit): its
    own (``unit.units``, a unit whose tasks have several: a return-unit rule over rewards
    of several scales) or the unit's."""
    return getattr(unit, "units", {}).get(label, unit.unit)


def describe(config: Config | None, unit: float, num_states: int) -> dict[str, Any]:
    """CSV columns of a configuration: absolute step_size, decay, schedule label."""
    if config is None:
        return {"step_size": np.nan, "decay": np.nan, "schedule": "none"}
    step, decay = config.absolute(unit, num_states)
    return {"step_size": step, "decay": decay, "schedule": config.label()}


def task_eps(suite, task, weighting: str) -> np.ndarray:
    """The accuracies of one (task, weighting): the suite's grid, or with
    ``suite.eps_relative`` that grid times the task's initial error e0 (the error of the
    all-zero estimate), so that every task is read over the same span of its own learning
    (SCIENCE.md section 7.1)."""
    eps = np.asarray(suite.eps_grid, np.float64)
    if getattr(suite, "eps_relative", False):
        return eps * task.initial_error[weighting]
    return eps


def band_mask(suite) -> np.ndarray:
    """bool[E]: which of the suite's eps lie in the estimand's accuracy band (relative
    grids only; all False otherwise)."""
    if not getattr(suite, "eps_relative", False):
        return np.zeros(len(suite.eps_grid), bool)
    rel = np.asarray(suite.eps_grid, np.float64)
    lo, hi = suite.band
    return (rel >= lo * (1 - 1e-9)) & (rel <= hi * (1 + 1e-9))


def tuning_seeds_of(spec: RuleSpec, suite) -> tuple[int, ...]:
    """The rule's tuning seeds: its own (a split-seed replicate) or the suite's."""
    return tuple(spec.tuning_seeds or suite.tuning_seeds)


def is_split(spec: RuleSpec, suite) -> bool:
    """Whether the rule is tuned on seeds other than the suite's (a split-seed replicate:
    its tuning seeds are resampled on their own stream)."""
    return tuning_seeds_of(spec, suite) != tuple(suite.tuning_seeds)
