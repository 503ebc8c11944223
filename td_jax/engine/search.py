"""The one tuning loop of the sample-complexity protocol (SCIENCE.md sections 7 and 9), for
every track's units (prediction and control): tune per accuracy on the tuning seeds,
extend the grid past edge selections, refine each band cell by compass search
(``engine.refine``), gather each cell's re-selection candidates, then evaluate the
selections and candidates on the evaluation seeds.

A unit is anything with ``prediction.Unit``'s attributes and its ``execute`` / ``curves``.
Every run is cached under ``<out>/.units/`` (``store.Units``), so an interrupted bench
resumes on rerun.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from td_jax.analysis import sample_complexity as sc
from td_jax.engine import refine, store, tuning
from td_jax.engine.scoring import estimand
from td_jax.engine.specs import Suite
from td_jax.engine.units import padded_count

Unit = Any  # ``prediction.Unit`` or ``control.ControlUnit``: the attributes read here


def _select_all(unit: Unit, suite: Suite, flat: float | None = None) -> set:
    """Selections of every (task, weighting, eps) of a unit; returns the edges left.

    A band cell whose compass search ended flat (``unit.search``) is interior by
    construction, wherever its configuration falls in the grid."""
    edges = set()
    for t in unit.tasks:
        for wi, w in enumerate(unit.axes):
            eps = tuning.task_eps(suite, t, w)
            mean = {c: m[:, wi] for c, m in unit.tuning[t.spec.label].items()}
            sel = tuning.select(unit.steps, mean, eps, tie=0.5 * suite.margin, flat=flat)
            trivial = tuning.Selection(None, float("nan"), "", reached=False)
            sel = [trivial if e >= t.initial_error[w] else x
                   for e, x in zip(eps, sel, strict=True)]  # fmt: skip
            for k, x in enumerate(sel):
                status = getattr(unit, "search", {}).get((t.spec.label, w, k), {})
                if x.config is not None and status.get(x.config.family) == "flat":
                    # Interior; a selection the flat rule moved off an edge keeps that
                    # record (its tie tolerance is the margin, here and in the bootstrap).
                    sel[k] = x._replace(edge="")
            unit.selected[(t.spec.label, w)] = sel
            edges |= {(s.config.family, s.edge, s.config.alpha, s.config.c)
                      for s in sel if s.config is not None and s.edge and not s.flat}  # fmt: skip
    return edges


# Refinement rounds run in chunks of at most 16 configurations per task (a search's two
# rings of probes, with the diagonals): the tuning rounds' own program where their padded
# size is no larger, so that a cheap unit compiles one program fewer, and small chunks
# where a large grid would pad a few probes of an expensive rule to many.
# Measured and not adopted (default, 2 cores): about half of a refinement chunk's slots are
# fillers, often whole tasks whose searches have ended. Running only the tasks with probes
# (``td_jax.run``'s ``streams``, their count padded up to a multiple of a quarter of the
# unit's tasks) gives identical results and cut the rounds' compute from 296 s to 214 s,
# but each unit then compiles up to three more programs: 236 s of compiling on a cold
# cache, more than it saved in 25 of 29 units.
REFINE_PAD = 16


def _tune(
    unit: Unit, configs, seeds, suite, tag: str, on_chunk, keep: bool, size: int | None = None
) -> None:
    """Runs configurations on the tuning seeds and stores their seed-mean curves.

    ``configs``: a list for every task, or (refining suites, ``keep``) ``{task label:
    list}``; then the per-seed curves of the primary weighting are kept too (for the
    re-selection bootstrap), and every round runs in chunks of one size (``size``, default
    ``unit.pad``) so that the rounds reuse one compiled program."""
    if not keep:
        result = unit.execute(configs, seeds, suite, tag, on_chunk)
        for label, curves in unit.curves(result).items():
            for j, c in enumerate(configs):
                unit.tuning[label][c] = curves[j].mean(axis=0)  # [C, W] seed-mean
        return
    size = size or unit.pad
    longest = max(len(c) for c in configs.values())
    if longest == 0:
        return
    for i in range(0, longest, size):
        chunk = {label: cs[i : i + size] for label, cs in configs.items()}
        name = tag if i == 0 else f"{tag}_{i // size}"
        result = unit.execute(chunk, seeds, suite, name, on_chunk, size)
        n_keep = _reselected_axes(unit, suite)  # they lead the curves' last axis
        for label, curves in unit.curves(result).items():
            for j, c in enumerate(chunk.get(label, [])):
                unit.tuning[label][c] = curves[j].mean(axis=0)
                unit.tuning_curves[label][c] = curves[j][:, :, :n_keep].astype(np.float32)


def _reselected_axes(unit: Unit, suite: Suite) -> int:
    """How many of the curves' leading axes the re-selection bootstrap covers: the
    estimand's, or every weighting's (``Suite.reselect_secondary``)."""
    if getattr(suite, "reselect_secondary", False):  # a prediction suite's key
        return len(unit.axes)
    return len(suite.estimand_axes)


def _scores(unit: Unit, label: str, eps: float, wi: int = 0) -> dict:
    configs = list(unit.tuning[label])
    mat = np.stack([unit.tuning[label][c][:, wi] for c in configs])
    n = sc.crossing_times(unit.steps, mat, np.asarray([eps]))[:, 0]
    return dict(zip(configs, n, strict=True))


def _start_rows(unit: Unit, suite: Suite, seeds, on_chunk) -> None:
    """Runs the suite's ``start_rows`` (harmonic rows at alpha0 = k x row, over the c values
    the grid holds after its extensions) on the tuning seeds, in the refinement's program
    shape, so that ``_refine`` starts a compass search from each row's best."""
    rows = getattr(suite, "start_rows", ())
    if not rows:
        return
    _, cs = tuning.family_grid(unit.configs, "harmonic")
    k = unit.spec.scale
    new = [tuning.Config("harmonic", tuning._round(k * a), float(c)) for a in rows for c in cs]
    todo = {t.spec.label: [c for c in new if c not in unit.tuning[t.spec.label]]
            for t in unit.tasks}  # fmt: skip
    _tune(unit, todo, seeds, suite, "rows", on_chunk, True, min(unit.pad, REFINE_PAD))


def _refine(unit: Unit, suite: Suite, seeds, on_chunk) -> None:
    """Compass searches (``engine.refine``) from every band cell's selection, on each of
    the estimand's axes, until each is flat to the suite's margin; all probes of a round
    run as one batch on the tuning seeds."""
    band = tuning.band_mask(suite)
    h0 = float(np.mean(np.diff(np.log(np.sort(np.asarray(suite.constant_grid))))))
    searches = {}
    for t, (wi, w) in itertools.product(unit.tasks, enumerate(suite.estimand_axes)):
        eps = tuning.task_eps(suite, t, w)
        for k in np.flatnonzero(band):
            scores = _scores(unit, t.spec.label, eps[k], wi)
            finite = [v for v in scores.values() if np.isfinite(v)]
            if not finite:
                continue
            best = min(finite)
            if best < sc.EARLY_UPDATES:  # met within the first updates: never in the band
                continue
            for start in refine.starts(scores, best * suite.refine_within):
                searches[(t.spec.label, w, int(k), start.family, start.alpha)] = (
                    refine.Compass(
                        start.family, h0, suite.margin, diagonals=suite.diagonals, center=start
                    ),
                    eps[k],
                    wi,
                )
    for r in range(suite.max_refinements + 1):
        new: dict[str, set] = {}
        scores: dict = {}  # one crossing computation per (task, axis, eps) a round
        for (label, *_), (search, e, wi) in searches.items():
            if (label, wi, e) not in scores:
                scores[(label, wi, e)] = _scores(unit, label, e, wi)
            probes = search.propose(scores[(label, wi, e)])
            new.setdefault(label, set()).update(p for p in probes if p not in unit.tuning[label])
        if not any(new.values()) or r == suite.max_refinements:
            break
        # Each task runs its own probes (a probe of one task says nothing about another's
        # optimum), all tasks in one program (per-task step sizes, one padded shape).
        todo = {label: sorted(cs, key=lambda c: (c.family, c.c, c.alpha))
                for label, cs in new.items()}  # fmt: skip
        _tune(unit, todo, seeds, suite, f"refine{r}", on_chunk, True, min(unit.pad, REFINE_PAD))
        unit.refinements = r + 1
    starts: dict[tuple, list] = {}  # per (cell, family): its searches, one per start
    for (label, ww, k, fam, _), (search, e, wi) in searches.items():
        starts.setdefault((label, ww, k, fam, wi, e), []).append(search)
    for (label, ww, k, fam, wi, e), group in starts.items():
        if (label, wi, e) not in scores:
            scores[(label, wi, e)] = _scores(unit, label, e, wi)
        best = refine.ended_best(group, scores[(label, wi, e)])
        unit.search.setdefault((label, ww, k), {})[fam] = best.status


def _candidates(unit: Unit, suite: Suite) -> None:
    """Per (task, estimand axis, band eps): the configurations the re-selection bootstrap
    chooses among, and the share of resamples they cover (``unit.coverage``).

    Every configuration run on the tuning seeds is re-selected on each resample of them by
    the tuning rule (``estimand.support``). What a cell's candidates must hold: its
    selection and the configurations re-selected most often, until they cover
    ``suite.coverage`` of the resamples or number ``suite.candidates`` (``covering``). The
    evaluation runs every task's configurations in one program whose rows are padded to
    one size, so a task with fewer configurations than the longest row has free rows:
    they take, in turn, the configuration with the largest re-selection share summed over
    the task's band cells that is not yet evaluated. A cell's candidates are then its
    selection and every configuration evaluated for its task that resamples re-select
    there, in the tie rule's order. ``coverage``: the share of resamples whose
    re-selection over every configuration run is among them (the rest take the best
    candidate). Other cells (the transient; a secondary weighting, unless the suite's
    ``reselect_secondary``: description) have their selection alone (coverage 1)."""
    n_keep = _reselected_axes(unit, suite)
    band = tuning.band_mask(suite)
    split = tuning.is_split(unit.spec, suite)
    shares: dict = {}  # (label, w, k) -> (configurations, f64[K] re-selection shares)
    need: dict[str, set] = {}  # per task: the configurations it must evaluate
    for t in unit.tasks:
        label = t.spec.label
        pool = list(unit.tuning[label])
        kept = [c for c in pool if c in unit.tuning_curves[label]]
        edge = dict(zip(pool, tuning.edges_of(pool), strict=True))
        order = sorted(kept, key=lambda c: tuning.tie_key(c, edge[c]))
        need[label] = set()
        for wi, w in enumerate(unit.axes):
            eps = tuning.task_eps(suite, t, w)
            for k, s in enumerate(unit.selected[(label, w)]):
                if s.config is None:
                    continue
                need[label].add(s.config)
                if wi >= n_keep or not s.reached or not band[k]:
                    continue
                cs = [s.config] + [c for c in order if c != s.config]
                curves = [unit.tuning_curves[label][c][:, :, wi] for c in cs]
                weights = estimand.tuning_weights(curves[0].shape[0], suite.reps, split)
                share = estimand.support(unit.steps, curves, eps[k], weights, bool(s.flat),
                                         suite.margin)  # fmt: skip
                shares[(label, w, k)] = (cs, share)
                need[label].update(
                    cs[i] for i in estimand.covering(share, suite.coverage, suite.candidates)
                )
    fill_free_rows(need, shares, padded_count(max([len(v) for v in need.values()] + [1]), 4))
    unit.coverage = {}
    for t in unit.tasks:
        label = t.spec.label
        for w in unit.axes:
            cells = [
                cell_candidates(shares[(label, w, k)], need[label])
                if (label, w, k) in shares
                else ([] if s.config is None else [s.config], 1.0)
                for k, s in enumerate(unit.selected[(label, w)])
            ]
            unit.candidates[(label, w)] = [c for c, _ in cells]
            unit.coverage[(label, w)] = [v for _, v in cells]


def fill_free_rows(need: dict[str, set], shares: dict, size: int) -> None:
    """Adds to each task's configurations (``need``: {task label: set}, in place), up to
    ``size`` (the evaluation program's padded row), those with the largest re-selection
    share summed over the task's band cells (``shares``: {(label, axis, eps index):
    (configurations, f64[K] shares)}) that are not yet there; ties in ``preference``."""
    for label, chosen in need.items():
        gain: dict = {}
        for (lab, _, _), (cs, share) in shares.items():
            for c, p in zip(cs, share, strict=True):
                if lab == label and p > 0 and c not in chosen:
                    gain[c] = gain.get(c, 0.0) + p
        best = sorted(gain, key=lambda c: (-gain[c], tuning.preference(c)))
        chosen.update(best[: max(size - len(chosen), 0)])


def cell_candidates(cell: tuple[list, np.ndarray], evaluated: set) -> tuple[list, float]:
    """(candidates, coverage) of one band cell from its (configurations, shares), the
    selection first: the selection and every evaluated configuration re-selected there,
    in the tie rule's order, and the share of resamples they cover."""
    cs, share = cell
    idx = [0] + [i for i in range(1, len(cs)) if share[i] > 0 and cs[i] in evaluated]
    return [cs[i] for i in idx], float(share[idx].sum())


def tune_and_evaluate(unit: Unit, suite: Suite, out: Path | None, on_chunk=None) -> Unit:
    """Tuning rounds (extending the grid past edge selections), refinement, evaluation.

    Once the extension budget is spent, edge selections within the suite's margin of an
    interior configuration take it (``tuning.select``'s ``flat``). Suites with
    ``max_refinements`` then refine every band cell's selection by compass search and
    evaluate each cell's candidates (for the re-selection bootstrap), not only its choice.
    ``out``: the results directory whose ``.units/`` caches every run (None: no cache).
    ``unit``: anything with ``Unit``'s attributes and its ``execute`` / ``curves``
    (the control suites' units too)."""
    unit.cache = store.Units(
        out, lambda msg: None, kind=unit.cache_kind, policy=unit.policy, cancel=unit.cancel
    )
    refining = getattr(suite, "max_refinements", 0) > 0
    seeds = tuning.tuning_seeds_of(unit.spec, suite)
    new = list(unit.configs)
    while True:
        if refining:  # per-task form: every tuning round then has one program shape
            unit.pad = unit.pad or padded_count(len(new))
            _tune(unit, {t.spec.label: new for t in unit.tasks}, seeds, suite,
                  f"tune{unit.rounds}", on_chunk, True)  # fmt: skip
        else:
            _tune(unit, new, seeds, suite, f"tune{unit.rounds}", on_chunk, keep=False)
        edges = _select_all(unit, suite)
        new = tuning.extend(unit.configs, edges) if edges else []
        if not new or unit.rounds >= suite.max_extensions:
            break
        unit.configs = unit.configs + new
        unit.rounds += 1
    if edges:
        _select_all(unit, suite, flat=suite.margin)
    if refining:
        _start_rows(unit, suite, seeds, on_chunk)
        _refine(unit, suite, seeds, on_chunk)
        _select_all(unit, suite, flat=suite.margin)
        _candidates(unit, suite)
        keep = {c for cs in unit.candidates.values() for cc in cs for c in cc}
        for label in unit.tuning_curves:  # per-seed curves only where the bootstrap reads
            unit.tuning_curves[label] = {c: x for c, x in unit.tuning_curves[label].items()
                                         if c in keep}  # fmt: skip
    if refining:  # each task's own choices and candidates, in one program
        chosen = {t.spec.label: _chosen(unit, t.spec.label) for t in unit.tasks}
        _evaluate(unit, suite, chosen, on_chunk)
    else:
        _evaluate(unit, suite, _chosen(unit), on_chunk)
    return unit


def _chosen(unit: Unit, label: str | None = None) -> list:
    """The configurations to evaluate: every selection and candidate (of task ``label``)."""
    sels = [v for (lab, _), v in unit.selected.items() if label in (None, lab)]
    cands = [v for (lab, _), v in getattr(unit, "candidates", {}).items() if label in (None, lab)]
    chosen = {s.config for sel in sels for s in sel if s.config is not None}
    chosen |= {c for cs in cands for cc in cs for c in cc}
    return sorted(chosen, key=lambda c: (c.family, c.c, c.alpha))


def _evaluate(unit: Unit, suite, chosen, on_chunk=None) -> None:
    """Runs ``chosen`` (a list for every task, or ``{task label: list}``) on the
    evaluation seeds and stores the per-seed curves."""
    per_task = chosen if isinstance(chosen, dict) else {t.spec.label: chosen for t in unit.tasks}
    if not any(per_task.values()):
        return
    result = unit.execute(chosen, suite.eval_seeds, suite, "eval", on_chunk)
    for label, curves in unit.curves(result).items():
        for i, c in enumerate(per_task[label]):
            unit.evaluation[label][c] = curves[i]  # [N, C, W]
