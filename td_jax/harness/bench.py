"""Run a suite by the sample-complexity protocol: tune per accuracy, then evaluate.

A unit is one rule on the tasks of one environment that share a step unit. Each unit runs
its step-size grid on the tuning seeds, selects per (task, weighting, eps) the
configuration with the smallest N(eps), extends its grid past any selection on an edge and
reruns the new configurations, then runs only the selected configurations on the
evaluation seeds (``td_jax.harness.tuning``). Every ``td_jax.run`` call is saved atomically
under ``<out>/.units/`` as soon as it finishes, so an interrupted bench resumes on rerun.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from td_jax import rules as rule_lib
from td_jax.harness import estimand, refine, report, store, tuning
from td_jax.harness import sample_complexity as sc
from td_jax.harness.store import UNITS, BenchError
from td_jax.harness.suites import RuleSpec, Suite
from td_jax.harness.tasks import TaskInfo, normalised, prepare_tasks, stream_mask
from td_jax.runner import RunResult, run
from td_jax.runner.inputs import check_rule_takes_env, structure
from td_jax.runner.metrics import WEIGHTINGS, checkpoint_density, dense_checkpoints
from td_jax.types import UpdateRule


def checkpoints(suite: Suite, env: str) -> np.ndarray:
    """Dense log-spaced checkpoints (``suite.per_decade`` a decade) over the env's horizon."""
    return dense_checkpoints(suite.horizon(env), suite.per_decade)


def build_rule(spec: RuleSpec, tasks: dict[str, Any]) -> tuple[UpdateRule, dict[str, Any]]:
    """Makes a suite's rule and returns it with the hyperparameters used.

    ``support="auto"`` covers the tasks' returns: every state's return lies in the support
    with probability >= 1 - ``support_tail`` (default 1e-4), widened by ``support_margin``
    (default 10%) of its width on each side.
    """
    hparams = dict(spec.hparams)
    if hparams.get("support") == "auto":
        del hparams["support"]
        tail = float(hparams.pop("support_tail", 1e-4))
        margin = float(hparams.pop("support_margin", 0.1))
        bounds = np.asarray([env.truth().bounds(tail) for env in tasks.values()])
        lo, hi = float(bounds[:, 0].min()), float(bounds[:, 1].max())
        pad = margin * max(hi - lo, 1.0)
        hparams.update(v_min=lo - pad, v_max=hi + pad)
    rule, hparams = _make_rule(spec, hparams)
    if spec.step_factor != 1.0:
        rule = rule_lib.rescaled(rule, spec.step_factor)
    return rule, hparams


def _make_rule(spec: RuleSpec, hparams: dict[str, Any]) -> tuple[UpdateRule, dict[str, Any]]:
    if isinstance(spec.rule, str):
        return rule_lib.make(spec.rule, **hparams), hparams
    try:
        rule = spec.rule(**hparams)
    except Exception as err:  # noqa: BLE001 - a plug-in's own failure, reported in one line
        where = traceback.extract_tb(err.__traceback__)[-1]
        raise BenchError(
            f"plug-in rule {spec.label!r}: its factory raised {type(err).__name__}: {err} "
            f"({Path(where.filename).name}, line {where.lineno})"
        ) from None
    if not isinstance(rule, UpdateRule):
        raise BenchError(
            f"plug-in rule {spec.label!r}: its factory must return a "
            f"td_jax.UpdateRule, got {type(rule).__name__}"
        )
    return rule, hparams


class Unit:
    """One rule on the tasks of one environment that share a step unit."""

    def __init__(self, spec: RuleSpec, env: str, unit: float, tasks: list[TaskInfo], suite):
        self.spec, self.env, self.unit, self.tasks = spec, env, unit, tasks
        envs = {m.spec.label: m.env for t in tasks for m in t.members}
        self.rule, self.hparams = build_rule(spec, envs)
        self.envs = envs
        self.num_states = tasks[0].env.num_states
        self.steps = checkpoints(suite, env)
        self.configs = tuning.initial_configs(spec, suite)
        self.tuning: dict[str, dict[tuning.Config, np.ndarray]] = {t.spec.label: {} for t in tasks}
        self.evaluation: dict[str, dict[tuning.Config, np.ndarray]] = {
            t.spec.label: {} for t in tasks
        }
        self.selected: dict[tuple[str, str], list[tuning.Selection]] = {}
        # Re-selection bootstrap: per-seed tuning curves (estimand axes, f32[N, C, A]),
        # each cell's candidates, and each band cell's compass status per family.
        self.tuning_curves: dict[str, dict[tuning.Config, np.ndarray]] = {
            t.spec.label: {} for t in tasks
        }
        self.candidates: dict[tuple[str, str], list[list[tuning.Config]]] = {}
        self.coverage: dict[tuple[str, str], list[float]] = {}  # per cell (``_candidates``)
        self.search: dict[tuple[str, str, int], dict[str, str]] = {}
        self.rounds = 0
        self.refinements = 0
        self.pad: int | None = None  # the tuning runs' padded size (refining suites)
        self.cache: store.Units | None = None  # set by tune_and_evaluate
        self.policy = store.policy()  # taken here, in the main thread (``store.Units``)

    axes = tuple(WEIGHTINGS)  # the names of the curves' last axis
    cache_kind = RunResult

    @property
    def name(self) -> str:
        return f"{self.spec.label}__{self.env}__u{self.unit:g}"

    def execute(
        self, configs, seeds, suite: Suite, tag: str, on_chunk=None, size=None
    ) -> RunResult:
        """``configs`` x ``seeds`` on the unit's tasks: one list for all, or ``{task label:
        list}``, each task its own (``_execute``)."""
        return _execute(self, configs, seeds, suite, tag, on_chunk, size)

    def curves(self, result: RunResult) -> dict[str, np.ndarray]:
        return normalised(result, self.tasks)


def padded_count(n: int, step: int = 8) -> int:
    """The configuration count a run is padded to: multiples of ``step`` up to 64, then
    of 32. Padding the rounds of a unit to one size lets them reuse one compiled program
    (step sizes are traced)."""
    step = step if n <= 64 else 32
    return max(step, -(-n // step) * step)


def _rows(unit: Unit, configs: dict, size: int) -> list[list[tuple[float, float]]]:
    """Per task, its configurations as (step, decay) pairs padded to ``size`` with distinct
    fillers (the runner refuses duplicates): steps a hair above the row's last one."""
    out = []
    for t in unit.tasks:
        pairs = [c.absolute(unit.unit, unit.num_states) for c in configs.get(t.spec.label, [])]
        last, decay = pairs[-1] if pairs else (1e-3 * unit.unit, np.inf)
        pairs += [(float(np.float32(last * (1 + 1e-4 * k))), decay)
                  for k in range(1, size - len(pairs) + 1)]  # fmt: skip
        out += [pairs] * len(getattr(t, "members", [t]))  # pooled: the row on every instance
    return out


def sweeps(unit, configs, size: int | None = None) -> tuple[list, list, list]:
    """(the (step, decay) pairs, the step sizes, the decays) a unit's run takes: one sweep
    of ``configs`` (a list) for every task, or per task its own (``{task label: list}``),
    each row padded to ``size`` (default ``padded_count`` of the longest, ``_rows``).
    Shared by the prediction and control units."""
    if isinstance(configs, dict):
        size = size or padded_count(max(len(c) for c in configs.values()), 4)
        pairs = _rows(unit, configs, size)
        return pairs, [[p[0] for p in r] for r in pairs], [[p[1] for p in r] for r in pairs]
    pairs = [c.absolute(unit.unit, unit.num_states) for c in configs]
    return pairs, [p[0] for p in pairs], [p[1] for p in pairs]


def _execute(unit: Unit, configs, seeds, suite: Suite, tag: str, on_chunk, size=None):
    """One ``td_jax.run`` of ``configs`` x ``seeds`` on the unit's tasks, cached.

    ``configs``: a list run on every task, or ``{task label: list}``: each task its own
    configurations, in one program (the runner's per-env step sizes), each row padded to
    ``size`` (default ``padded_count`` of the longest); a task's first
    ``len(configs[label])`` rows are its.
    """
    pairs, steps, decay = sweeps(unit, configs, size)
    key = {
        "rule": unit.spec.config(),
        "hparams": unit.hparams,
        "tasks": [t.spec.config() for t in unit.tasks],
        "configs": pairs,
        "seeds": list(seeds),
        "steps": unit.steps.tolist(),
        "mode": suite.mode,
    }

    def compute() -> RunResult:
        return run(
            {unit.spec.label: unit.rule},
            unit.envs,
            steps,
            list(seeds),
            int(unit.steps[-1]),
            mode=suite.mode,
            checkpoints=unit.steps,
            decay=decay,
            distribution_metric=False,
            progress=on_chunk,
            streams=stream_mask(unit.tasks, seeds),
        )

    return unit.cache.get(f"{unit.name}__{tag}", key, compute, rule=unit.spec.rule)


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


REFINE_PAD = 8  # refinement rounds run few probes per task: chunks of 8 waste little


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
        n_est = len(suite.estimand_axes)  # the estimand's axes lead the curves' last axis
        for label, curves in unit.curves(result).items():
            for j, c in enumerate(chunk.get(label, [])):
                unit.tuning[label][c] = curves[j].mean(axis=0)
                unit.tuning_curves[label][c] = curves[j][:, :, :n_est].astype(np.float32)


def _scores(unit: Unit, label: str, eps: float, wi: int = 0) -> dict:
    configs = list(unit.tuning[label])
    mat = np.stack([unit.tuning[label][c][:, wi] for c in configs])
    n = sc.crossing_times(unit.steps, mat, np.asarray([eps]))[:, 0]
    return dict(zip(configs, n, strict=True))


def _refine(unit: Unit, suite: Suite, seeds, on_chunk) -> None:
    """Compass searches (``harness.refine``) from every band cell's selection, on each of
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
            for fam in ("constant", "harmonic"):
                fam_best = min((v for c, v in scores.items() if c.family == fam
                                and np.isfinite(v)), default=np.inf)  # fmt: skip
                if fam_best <= best * suite.refine_within:
                    searches[(t.spec.label, w, int(k), fam)] = (
                        refine.Compass(fam, h0, suite.margin),
                        eps[k],
                        wi,
                    )
    for r in range(suite.max_refinements + 1):
        new: dict[str, set] = {}
        scores: dict = {}  # one crossing computation per (task, axis, eps) a round
        for (label, _, _, _), (search, e, wi) in searches.items():
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
        _tune(unit, todo, seeds, suite, f"refine{r}", on_chunk, True, REFINE_PAD)
        unit.refinements = r + 1
    for (label, ww, k, fam), (search, _, _) in searches.items():
        status = "searching" if search.status == "searching" else search.status
        unit.search.setdefault((label, ww, k), {})[fam] = status


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
    candidate). Other cells (the transient, a secondary weighting: description) have their
    selection alone (coverage 1)."""
    n_est = len(suite.estimand_axes)
    band = tuning.band_mask(suite)
    split = tuning.is_split(unit.spec, suite)
    shares: dict = {}  # (label, w, k) -> (configurations, f64[K] re-selection shares)
    need: dict[str, set] = {}  # per task: the configurations it must evaluate
    for t in unit.tasks:
        label = t.spec.label
        pool = list(unit.tuning[label])
        kept = [c for c in pool if c in unit.tuning_curves[label]]
        order = sorted(kept, key=lambda c: tuning.tie_key(c, tuning.edge_of(c, pool)))
        need[label] = set()
        for wi, w in enumerate(unit.axes):
            eps = tuning.task_eps(suite, t, w)
            for k, s in enumerate(unit.selected[(label, w)]):
                if s.config is None:
                    continue
                need[label].add(s.config)
                if wi >= n_est or not s.reached or not band[k]:
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
    unit.cache = store.Units(out, lambda msg: None, kind=unit.cache_kind, policy=unit.policy)
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


POLL_SECONDS = 0.2  # how often the main thread wakes while units run (signal handling)


def _progress_bar(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    bar.start()
    return bar


def make_units(suite: Suite, infos: dict[str, TaskInfo]) -> list[Unit]:
    """Units: (rule, environment, step unit) with the tasks they hold."""
    units = []
    for spec in suite.rules:
        envs = {m.spec.label: m.env for t in infos.values() if runs_on(spec, t.spec)
                for m in t.members}  # fmt: skip
        spec = spec.resolved(build_rule(spec, envs)[0].facts) if envs else spec
        groups: dict[tuple[str, float], list[TaskInfo]] = {}
        for info in infos.values():
            if not runs_on(spec, info.spec):
                continue
            u = tuning.unit_scale(spec, info.values, info.variances, info.weights["visit"],
                                  info.spread)  # fmt: skip
            groups.setdefault((info.spec.env, u), []).append(info)
        units += [Unit(spec, env, u, tasks, suite) for (env, u), tasks in groups.items()]
    # The costliest rules first, so that their long runs overlap everything else.
    return sorted(units, key=lambda u: -u.rule.facts.relative_cost)


def runs_on(spec: RuleSpec, task) -> bool:
    """Whether the rule runs on the task (``task``: a TaskSpec; its env and label)."""
    if spec.envs is not None and task.env not in spec.envs:
        return False
    return spec.tasks is None or task.label in spec.tasks


def run_suite(
    suite: Suite,
    out: Path,
    *,
    quiet: bool = False,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Runs (or resumes) ``suite`` into ``out`` and writes every report. Returns the manifest.

    Args:
      suite: what to run.
      out: the results directory (created; refused if it holds another suite's results).
      quiet: no progress bar or log lines.
      workers: units run concurrently (compilation overlaps with computation).
      log: where log lines go (default: stderr unless quiet).
    """
    log = log or store.logger(quiet)
    out = Path(out)
    start = time.perf_counter()
    infos = prepare_tasks(suite)
    units = make_units(suite, infos)
    suite = resolved(suite, units)  # the manifest says what each rule was tuned on
    preflight(units, suite.mode)
    store.guard(out, suite.name)  # after every check: a refused input writes nothing
    started = start_floors(units, out)  # a child process, beside the units
    try:
        _run_units(units, suite, out, log, start, quiet, workers)
    except BaseException:
        if started[3] is not None:
            started[3].kill()
        raise
    return _publish(suite, out, units, infos, finish_floors(started), log, start)


def resolved(suite, units: list) -> Any:
    """``suite`` with each rule's spec as its units resolved it (``RuleSpec.resolved``: the
    step unit and grid scale its facts gave); a rule with no unit keeps its own."""
    by_label = {u.spec.label: u.spec for u in units}
    return dataclasses.replace(suite, rules=tuple(by_label.get(r.label, r) for r in suite.rules))


def preflight(units: list[Unit], mode: str) -> None:
    """Every rule must take every task's transitions (plug-ins included), checked by
    tracing before anything compiles or runs; one task per structure stands for all."""
    for unit in units:
        checked = set()
        for name, env in unit.envs.items():
            signature = structure(env)
            if signature not in checked:
                checked.add(signature)
                try:
                    check_rule_takes_env(unit.spec.label, unit.rule, name, env, mode)
                except ValueError as err:
                    if isinstance(unit.spec.rule, str):
                        raise  # a built-in rule that fails its own suite is a bug
                    raise BenchError(f"plug-in {err}") from None


def _run_units(units: list[Unit], suite: Suite, out: Path, log, start: float, quiet: bool,
               workers: int) -> None:  # fmt: skip
    """Tunes and evaluates every unit, ``workers`` at a time, one log line per unit."""
    bar = _progress_bar(quiet)
    overall = bar.add_task(f"suite {suite.name}", total=len(units)) if bar else None
    done = {"n": 0, "lock": threading.Lock()}

    def work(unit: Unit) -> Unit:
        t0 = time.perf_counter()
        tune_and_evaluate(unit, suite, out)
        with done["lock"]:
            done["n"] += 1
            n, elapsed = done["n"], time.perf_counter() - start
        eta = elapsed / n * (len(units) - n)
        log(
            f"  [{n}/{len(units)}] {unit.name}: {time.perf_counter() - t0:.1f} s, "
            f"{sum(len(v) for v in unit.tuning.values())} (task, configuration) runs, "
            f"{unit.rounds} extension(s), {unit.refinements} refinement round(s), "
            f"{unit.cache.computed} run(s) computed, {unit.cache.reused} reused; "
            f"elapsed {elapsed:.0f} s, ETA {eta:.0f} s"
        )
        return unit

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        pending = {pool.submit(work, unit) for unit in units}
        while pending:
            # A timed wait: the main thread returns to the interpreter every POLL_SECONDS, so
            # a Ctrl-C that the OS delivered to another thread (XLA's, a worker's) is acted
            # on at once, not when the unit the main thread waits on happens to finish.
            done_now, pending = concurrent.futures.wait(
                pending, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done_now:
                future.result()  # a failed unit raises here
                if bar is not None:
                    bar.advance(overall)
    except BaseException:
        # Ctrl-C (or a failed unit): stop now. Queued units are cancelled; finished ones are
        # on disk; the CLI ends the process without waiting for those in flight.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        if bar is not None:
            bar.stop()
    pool.shutdown(wait=True)


def _publish(suite: Suite, out: Path, units: list[Unit], infos, floor_table, log,
             start: float) -> dict[str, Any]:  # fmt: skip
    """Writes the report (staged, then published as a set) and returns the manifest."""
    stage = store.staging_dir(out)
    # The headline verdict ends with the control answer of the results beside it.
    root = out.parent if suite.name == "default" else None
    stale = store.stale_reused(out) if store.reusing_stale() else None
    manifest = report.write_all(suite, stage, units, infos, floor_table, root, stale)
    manifest.update(
        runs_computed=sum(u.cache.computed for u in units),
        runs_reused=sum(u.cache.reused for u in units),
        checkpoint_density=min(checkpoint_density(u.steps) for u in units),
        tasks={label: info.manifest() for label, info in infos.items()},
    )
    total = store.Units(out, log)
    total.seconds = sum(u.cache.seconds for u in units)
    total.computed, total.reused = manifest["runs_computed"], manifest["runs_reused"]
    manifest = store.write_manifest(stage, manifest, total, start)
    store.publish(stage, out)
    for d in manifest["diverged_cells"]:  # loud, even when quiet
        print(f"td-jax: warning: rule {d['rule']} diverged on task {d['task']} ({d['diverged']} "
              f"of {d['seeds']} evaluation seeds); its cells say so", file=sys.stderr)  # fmt: skip
    return manifest


def _floor_jobs(units: list[Unit], cache: dict) -> tuple[list, dict]:
    """(every (rule label, task, key), the jobs not in the cache {key: job})."""
    keyed, jobs = [], {}
    for unit in units:
        name = unit.spec.rule if isinstance(unit.spec.rule, str) else None
        for t in unit.tasks:
            keys = []
            for m in t.members:  # a pooled task: each instance's floor
                key = store.digest({"rule": name, "hparams": unit.hparams,
                                    "task": m.spec.config()})  # fmt: skip
                keys.append((m, key))
                if key not in cache and name is not None:
                    jobs[key] = {
                        "rule": name, "hparams": unit.hparams, "env": m.spec.env,
                        "env_params": dict(m.spec.env_params),
                        "weights": {w: x.tolist() for w, x in m.weights.items()},
                    }  # fmt: skip
            keyed.append((unit.spec.label, t, keys))
    return keyed, jobs


def start_floors(units: list[Unit], out: Path):
    """Starts the floors (numpy fixed-point iterations, minutes for large m, holding the GIL)
    in a child process beside the units; ``finish_floors`` collects them."""
    path = out / UNITS / "floors.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    keyed, jobs = _floor_jobs(units, cache)
    proc = None
    if jobs:
        proc = subprocess.Popen(
            [sys.executable, "-m", "td_jax.harness.floors"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        proc.stdin.write(json.dumps(jobs, default=str))
        proc.stdin.close()
    return path, cache, keyed, proc


def finish_floors(started) -> dict[tuple[str, str], dict | None]:
    """Each (rule, task)'s bias floor in normalised units per weighting (cached on disk)."""
    path, cache, keyed, proc = started
    if proc is not None:
        output = proc.stdout.read()
        if proc.wait() != 0:
            raise RuntimeError(f"the floors process failed (exit {proc.returncode})")
        cache.update(json.loads(output))
    table = {}
    for label, t, keys in keyed:
        raws = [(m, cache.get(key)) for m, key in keys]
        # Normalised by each instance's own scale; a pooled task's floor is their mean.
        table[(label, t.spec.label)] = None if any(r is None for _, r in raws) else {
            w: float(np.mean([r[w] / m.scales[w] for m, r in raws])) for w in raws[0][1]
        }  # fmt: skip
    store.write_atomic(path, json.dumps(cache))
    return table
