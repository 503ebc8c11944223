"""The protocol's measurements on a ``td_jax.run`` result: N(eps) and the speed-up S(eps),
with paired-bootstrap intervals over seeds, in the normalised error every suite uses.

What they share with the suites is ``analysis.sample_complexity``'s arithmetic: N(eps) as
the crossing of the seed-mean curve (``crossing_times``) and the bootstrap over seeds,
paired across rules for S (``bootstrap_speedup``). The suites never call
``bootstrap_speedup``: their intervals (``engine.scoring.estimand``: ``cell_boot``, then
``test``) also re-select the configuration on resampled tuning seeds and are widened by the
search's resolution, log 1.025 on each side, so on the same curves only the point values
agree and the suites' intervals are wider (SCIENCE.md sections 7.4 and 9.3). These run on a
result as it stands: no tuning. A step size is a configuration, and a comparison at one
untuned step size says how the rules compare *there*; the suites (``td-jax bench``) tune
each rule per accuracy first (SCIENCE.md sections 7 and 9).

    result = td_jax.run(["td", "qtd"], envs, [0.03, 0.1], num_seeds=100, num_steps=10_000)
    td_jax.analysis.n_eps(result, [0.1, 0.01], relative=True)   # eps as multiples of e0
    td_jax.analysis.speedup(result, "td", [0.1, 0.01], relative=True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from td_jax.analysis import asymptotic
from td_jax.analysis import sample_complexity as sc
from td_jax.runner.result import RunResult

__all__ = ["n_eps", "speedup", "sample_complexity", "asymptotic"]
sample_complexity = sc


def _eps(result: RunResult, env: str, eps: Sequence[float], weighting: str,
         relative: bool) -> np.ndarray:  # fmt: skip
    e = np.asarray(eps, np.float64).reshape(-1)
    if e.size == 0 or not np.all(np.isfinite(e) & (e > 0)):
        raise ValueError(f"eps must be a non-empty sequence of numbers > 0, got {list(eps)!r}")
    if not relative:
        return e
    e0 = result.info["initial_error"][env][weighting]
    if not e0 > 0:
        raise ValueError(
            f"env {env!r}: its initial error e0 is {e0!r} (every true value is 0), so eps "
            "relative to it is undefined; give eps in absolute units"
        )
    return e * e0


def _step(result: RunResult, e: int, a: int) -> tuple[float, float]:
    steps = np.asarray(result.step_sizes)
    decay = np.asarray(result.decay, np.float64)
    alpha = steps[e, a] if steps.ndim == 2 else steps[a]
    d = decay[e, a] if decay.ndim == 2 else decay[a]
    return float(alpha), float(d)


def n_eps(result: RunResult, eps: Sequence[float], *, weighting: str = "visit",
          relative: bool = False, reps: int = sc.REPS, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """N(eps) per (rule, env, step size): the updates after which the seed-mean normalised
    error stays <= eps (``sample_complexity.crossing_times``), with its 95% bootstrap
    interval over seeds (``bootstrap_n``; inf: not reached in over 2.5% of resamples).

    Args:
      result: a ``td_jax.run`` result.
      eps: accuracies, in the normalised error (``RunResult.normalised_error``); with
        ``relative`` multiples of each env's initial error e0 (the all-zero estimate's).
      weighting: "visit" or "uniform" state weights.
      reps, seed: bootstrap resamples and their seed (the same as ``speedup``'s: paired).

    Returns a tidy frame: rule, env, step_size, decay, eps, n_updates (nan: not reached
    within the horizon), n_low, n_high, reached.
    """
    err = result.normalised_error(weighting)
    rows = []
    for r, rule in enumerate(result.rules):
        for e, env in enumerate(result.envs):
            eps_e = _eps(result, env, eps, weighting, relative)
            for a in range(err.shape[2]):
                n, low, high = sc.bootstrap_n(result.checkpoints, err[r, e, a], eps_e, reps, seed)
                alpha, d = _step(result, e, a)
                rows += [{"rule": rule, "env": env, "step_size": alpha, "decay": d,
                          "eps": float(x), "n_updates": float(n[k]), "n_low": float(low[k]),
                          "n_high": float(high[k]), "reached": bool(np.isfinite(n[k]))}
                         for k, x in enumerate(eps_e)]  # fmt: skip
    return pd.DataFrame(rows)


def speedup(result: RunResult, baseline: str, eps: Sequence[float], *, weighting: str = "visit",
            relative: bool = False, margin: float = 0.05, reps: int = sc.REPS,
            seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """S(eps) = N_baseline / N_rule of every other rule against ``baseline`` at the same
    step size (its index in the sweep), with a paired bootstrap over seeds
    (``sample_complexity.bootstrap_speedup``: both rules saw the same streams, and each
    resample draws the same seeds for both). The suites' intervals share this pairing and
    add the re-selection of the configuration and the resolution (the module docstring).

    A side that does not reach eps within the horizon makes S a bound (the horizon stands
    in for its N: ``bound`` says which side). ``p_value`` tests |log S| <= log(1 + margin).

    Returns a tidy frame: rule, baseline, env, step_size, decay, eps, n_rule, n_baseline,
    speedup, s_low, s_high, p_value, bound.
    """
    if baseline not in result.rules:
        raise ValueError(f"baseline {baseline!r} is not a rule of the result {result.rules}")
    err = result.normalised_error(weighting)
    b = result.rules.index(baseline)
    rows = []
    for r, rule in enumerate(result.rules):
        if r == b:
            continue
        for e, env in enumerate(result.envs):
            eps_e = _eps(result, env, eps, weighting, relative)
            for a in range(err.shape[2]):
                s = sc.bootstrap_speedup(result.checkpoints, err[r, e, a], err[b, e, a], eps_e,
                                         margin=margin, reps=reps, seed=seed)  # fmt: skip
                alpha, d = _step(result, e, a)
                for k, x in enumerate(eps_e):
                    reached = np.isfinite([s.n_rule[k], s.n_base[k]])
                    bound = "" if reached.all() else ("baseline" if reached[0] else "rule")
                    rows.append({
                        "rule": rule, "baseline": baseline, "env": env, "step_size": alpha,
                        "decay": d, "eps": float(x), "n_rule": float(s.n_rule[k]),
                        "n_baseline": float(s.n_base[k]), "speedup": float(np.exp(s.log_s[k])),
                        "s_low": float(np.exp(s.log_low[k])),
                        "s_high": float(np.exp(s.log_high[k])), "p_value": float(s.p_value[k]),
                        "bound": bound if reached.any() else "neither reached",
                    })  # fmt: skip
    return pd.DataFrame(rows)
