"""``td_jax.run(..., step_unit="auto")``: each rule's step sizes in its own unit.

A rule whose facts say its step is in return units (``RuleFacts.step_unit == "return"``:
QTD and the quantile dopamine population move their statistics by at most the step, in
the return's units) runs at the given step sizes times each task's return scale, the RMS
return under the stream's state weights (``return_scale``), rounded to 3 digits as the
suites round it; a fraction-unit rule (TD: a step of 1 moves the estimate all the way to
its target) runs at the step sizes as given. Harmonic decays scale with their steps, so
the schedule's shape is the same in either unit.

Rules of one unit run together; the results are joined on the rule axis in the order
given. Every stream depends only on (seed, env name, seed index), so the rules still see
the same transitions (common random numbers). ``RunResult.step_sizes`` keeps the steps
as given; ``info["step_units"]`` holds each rule's unit per env.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from td_jax.runner.inputs import make_rule, named
from td_jax.runner.metrics import return_scale, return_spread, visit_weights
from td_jax.runner.result import RunResult
from td_jax.types import UpdateRule

STEP_UNITS = ("given", "auto")


def env_unit(env: Any, mode: str) -> float:
    """The return scale of ``env`` (3 digits), the unit of a return-unit rule's steps."""
    weights = visit_weights(env, mode)
    values = np.asarray(env.true_values(), np.float64)
    variances = np.asarray(env.return_variances(), np.float64)
    spread = return_spread(env, variances)
    return float(f"{max(return_scale(values, variances, weights, spread), 1e-6):.3g}")


def run_in_units(run: Callable[..., RunResult], args: dict[str, Any]) -> RunResult:
    """``run(**args)`` with each rule's steps in its own unit (the module docstring)."""
    rules = named(args["rules"], "rule", make_rule, single=lambda x: isinstance(x, UpdateRule))
    envs = named(args["envs"], "env", single=lambda x: hasattr(x, "num_states"))
    mode = args["mode"]
    groups: dict[tuple[float, ...], list[tuple[str, UpdateRule]]] = {}
    for name, rule in rules:
        if not isinstance(rule, UpdateRule):
            raise ValueError(f"rule {name!r} must be a td_jax.UpdateRule, got {type(rule)}")
        returns = rule.facts.step_unit == "return"
        units = tuple(env_unit(env, mode) if returns else 1.0 for _, env in envs)
        groups.setdefault(units, []).append((name, rule))
    results, step_units = {}, {}
    for units, members in groups.items():
        sub = dict(args, rules=dict(members), step_unit="given")
        if any(u != 1.0 for u in units):
            sub.update(_scaled(args["step_sizes"], args["decay"], np.asarray(units), len(envs)))
        result = run(**sub)
        for name, _ in members:
            results[name] = result
            step_units[name] = {env: u for (env, _), u in zip(envs, units, strict=True)}
    return _joined([name for name, _ in rules], results, args, step_units)


def _scaled(step_sizes: Any, decay: Any, units: np.ndarray, num_envs: int) -> dict[str, Any]:
    """Per-env rows of the steps (and decays) times each env's unit."""
    alphas = np.asarray(step_sizes, np.float64)
    alphas = np.broadcast_to(alphas, (num_envs, alphas.shape[-1])) if alphas.ndim == 1 else alphas
    d = np.full(alphas.shape, np.inf) if decay is None else np.asarray(decay, np.float64)
    d = np.broadcast_to(d, alphas.shape)
    return {"step_sizes": alphas * units[:, None], "decay": d * units[:, None]}


def _joined(order: list[str], results: dict[str, RunResult], args: dict[str, Any],
            step_units: dict[str, dict[str, float]]) -> RunResult:  # fmt: skip
    """One RunResult of every rule, in ``order``, from the per-unit runs."""
    picks = [(results[name], results[name].rules.index(name)) for name in order]
    first = picks[0][0]

    def stack(get: Callable[[RunResult], np.ndarray]) -> np.ndarray:
        return np.concatenate([get(res)[i : i + 1] for res, i in picks], axis=0)

    final_dists = {}
    for res, i in picks:
        final_dists.update({k: v for k, v in res.final_distributions.items()
                            if k.split("/", 1)[0] == res.rules[i]})  # fmt: skip
    info = dict(first.info, step_units=step_units, run_seconds=sum(
        r.info.get("run_seconds", 0.0) for r in {id(r): r for r, _ in picks}.values()))  # fmt: skip
    return dataclasses.replace(
        first,
        rules=list(order),
        step_sizes=np.asarray(args["step_sizes"], np.float64),
        decay=None if args["decay"] is None else np.asarray(args["decay"], np.float64),
        value_error=stack(lambda r: r.value_error),
        distribution_error=stack(lambda r: r.distribution_error),
        diverged=stack(lambda r: r.diverged),
        distributional=[res.distributional[i] for res, i in picks],
        final_values={e: stack(lambda r, e=e: r.final_values[e]) for e in first.envs},
        final_distributions=final_dists,
        metrics={m: stack(lambda r, m=m: r.metrics[m]) for m in first.metrics},
        info=info,
    )
