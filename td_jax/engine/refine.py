"""Local refinement of a step-size selection: a compass search in log step space.

A coarse grid leaves the selected configuration up to a grid ratio from the optimum, and
where the grid happens to fall decides how far (SCIENCE.md section 9): TD and TD with its
step multiplied by 1.37 inside the kernel would get different N(eps) from the same grid.
From the coarse selection, ``Compass`` probes the configuration's neighbours at a log
distance ``h`` along every free axis of its family (the step alpha; for the harmonic
family alpha0 and the decay scale c, tuned jointly, and with ``diagonals`` the two
diagonals of those axes), moves to a better probe, and halves ``h`` when none is better.
It stops when every neighbour at the current ``h`` is within the suite's margin of the
selection (the optimum is flat there, to the margin) or ``h`` falls below ``min_h``. Every
probe is a configuration run on the tuning seeds; the search is deterministic given those
runs, so a resumed bench proposes the same probes and finds them in its cache.

Reference: Kolda, Lewis and Torczon (2003), "Optimization by direct search: new
perspectives on some classical and modern methods", SIAM Review 45:385-482 (compass
search, section 3).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from td_jax.engine.tuning import Config

AXES = {"constant": ("alpha",), "harmonic": ("alpha", "c")}
# Probe directions in log space, each taken with both signs: the axes, and (a suite's
# ``diagonals``) for the harmonic family the two diagonals of (log alpha0, log c). N(eps)
# over (alpha0, c) has valleys along which the two trade off (a larger alpha0 with a
# faster decay); a search along the axes alone stops on a valley's side, where every axis
# step climbs.
DIRECTIONS = {"constant": ((1.0,),), "harmonic": ((1.0, 0.0), (0.0, 1.0))}
DIAGONALS = {"constant": (), "harmonic": ((1.0, -1.0), (1.0, 1.0))}


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def neighbours(config: Config, h: float, diagonals: bool = False) -> list[Config]:
    """The configurations a log distance ``h`` from ``config`` along each of its family's
    ``DIRECTIONS``, and with ``diagonals`` its ``DIAGONALS`` (a diagonal probe moves every
    axis by ``h``)."""
    family = config.family
    out = []
    for direction in DIRECTIONS[family] + (DIAGONALS[family] if diagonals else ()):
        for sign in (-1.0, 1.0):
            moved = {axis: _round(getattr(config, axis) * float(np.exp(sign * d * h)))
                     for axis, d in zip(AXES[family], direction, strict=True) if d}  # fmt: skip
            out.append(config._replace(**moved))
    return out


@dataclasses.dataclass
class Compass:
    """The state of one cell's search (one family, one (task, weighting, eps)).

    Attributes:
      family: the family searched ("constant" or "harmonic").
      h: the current log distance of the probes.
      margin: neighbours within a factor ``1 + margin`` of the centre's N are flat.
      min_h: the smallest ``h`` tried (the search's resolution).
      diagonals: probe the diagonals of a two-axis family too (``neighbours``).
      center: the current configuration (None until the first proposal: the family's
        best so far). It moves to a probe only on a decrease of more than half the margin
        (sufficient decrease), so a search along a ridge of near-equal N (the harmonic
        family's alpha0 and d trade off late on) stops instead of wandering.
      status: "searching", "flat" (every neighbour within the margin), "resolution"
        (``h`` fell below ``min_h`` with a neighbour still beyond the margin) or
        "unreached" (no configuration of the family reaches eps).
    """

    family: str
    h: float
    margin: float
    min_h: float = float(np.log(1.01))
    diagonals: bool = False
    center: Config | None = None
    status: str = "searching"

    def best(self, scores: dict[Config, float]) -> Config | None:
        """The family's configuration with the smallest score (ties: the smaller alpha,
        then the larger c, so that the choice is fixed)."""
        mine = [c for c in scores if c.family == self.family and np.isfinite(scores[c])]
        if not mine:
            return None
        return min(mine, key=lambda c: (scores[c], c.alpha, -c.c))

    def propose(self, scores: dict[Config, float]) -> list[Config]:
        """Configurations to run before the next decision ([] when the search is over).

        ``scores``: N(eps) on the tuning seeds of every configuration run so far (inf or
        nan: eps not reached)."""
        scores = {c: (s if np.isfinite(s) else np.inf) for c, s in scores.items()}
        if self.center is None and self.status == "searching":
            self.center = self.best(scores)
            if self.center is None:  # no configuration of the family reaches eps
                self.status = "unreached"
        while self.status == "searching":
            probes = neighbours(self.center, self.h, self.diagonals)
            missing = [p for p in probes if p not in scores]
            if missing:  # with the next ring (h / 2): a halving then costs no round
                ring = neighbours(self.center, self.h / 2, self.diagonals)
                inner = [p for p in ring if p not in scores]
                return missing + inner
            here = scores[self.center]
            step = min(probes, key=lambda c: (scores[c], c.alpha, -c.c))
            if scores[step] < here * (1.0 - 0.5 * self.margin):
                self.center = step  # a sufficient decrease: move, keep h
            elif all(scores[p] <= here * (1.0 + self.margin) for p in probes):
                self.status = "flat"
            elif self.h / 2.0 < self.min_h:
                self.status = "resolution"
            else:
                self.h /= 2.0
        return []


def starts(scores: dict[Config, float], within: float) -> list[Config]:
    """Where compass searches start: per family, and for the harmonic family per alpha0
    of the coarse grid (its rows), the best configuration, where its N is at most
    ``within`` (the best N times the suite's ``refine_within``).

    The harmonic family's N(eps) over (alpha0, c) can have a narrow valley along which
    alpha0 and c trade off (a larger alpha0 with a faster decay); a single search from
    the best coarse point can stop on a shoulder of it. One start per alpha0 row puts a
    search in every basin the grid touches, so that a rule and the same rule with its step
    scaled inside it (whose grids fall differently) more often reach the same floor. A
    minimum narrower than the grid's spacing (near-deterministic tasks have such needles)
    can still be found by one grid and missed by the other."""
    rows: dict[tuple[str, float], tuple[float, Config]] = {}
    for c, v in scores.items():
        if not np.isfinite(v) or v > within:
            continue
        key = (c.family, c.alpha if c.family == "harmonic" else 0.0)
        held = rows.get(key)
        if held is None or (v, c.alpha, -c.c) < (held[0], held[1].alpha, -held[1].c):
            rows[key] = (v, c)
    return [rows[key][1] for key in sorted(rows)]


def refine(
    objective,
    start: dict[Config, float],
    families: tuple[str, ...],
    h: float,
    margin: float,
    max_rounds: int = 12,
    within: float = np.inf,
    diagonals: bool = False,
) -> tuple[dict[Config, float], dict[str, Compass]]:
    """Runs compass searches of ``families`` to the end on a scalar objective.

    ``objective(configs) -> {config: score}`` evaluates a batch (the bench runs it on the
    tuning seeds); ``start``: the coarse grid's scores. Searches start where ``starts``
    says (``within``: the suite's ``refine_within``; ``diagonals``: its probe set).
    Returns every score and, per family, the search whose centre ended best. The bench
    drives many searches per round itself; this loop is the same logic for one cell, used
    by the tests on synthetic landscapes."""
    scores = dict(start)
    mine = {c: v for c, v in scores.items() if c.family in families and np.isfinite(v)}
    best = min(mine.values(), default=np.inf)
    searches = [Compass(c.family, h, margin, diagonals=diagonals, center=c)
                for c in starts(mine, best * within)]  # fmt: skip
    for _ in range(max_rounds):
        new = {p for s in searches for p in s.propose(scores)}
        if not new:
            break
        scores.update(objective(sorted(new, key=lambda c: (c.family, c.c, c.alpha))))
    return scores, {f: ended_best([s for s in searches if s.family == f], scores)
                    for f in {s.family for s in searches}}  # fmt: skip


def ended_best(searches: list[Compass], scores: dict[Config, float]) -> Compass:
    """Of one cell's searches of one family (one per start), the one whose centre ended
    with the smallest N (inf or nan: not reached); its status is the family's."""

    def n(search: Compass) -> float:
        v = scores.get(search.center, np.inf)
        return v if np.isfinite(v) else np.inf

    return min(searches, key=n)
