"""The atlas's axes (``atlas.csv``'s columns about the task and the rule), read from the
built environments and rules, never from the suite's spec text: a reward given in any form
(a dict, a name, a number, the pair ``(name, params)``, a Reward object, or none: the
environment's default, per-state ``rewards=[...]``) gives the same axes.

Reward axes, per distinct reward law of the task's environment(s) (``env.reward_laws()``
and each slot's ``config()``; ``reward_axes``):

* ``family``: the family's name; "mixed" where the slots' laws are of several families;
* the shape columns (``SHAPES``: the family's own parameters, e.g. Student t's df, loc and
  scale, the Gaussian's mean and std, Bernoulli's p and value) and ``standardize``: the
  value all the laws share, nan where they differ;
* ``df_tail``: Student t's df, inf for the Gaussian, nan for other families; over several
  laws the smallest (the heaviest tail decides), nan if one law has none;
* ``inv_df``: 1 / df for Student t, 0 for the Gaussian and the light-tailed families of
  ``LIGHT`` (bounded, or an exponential tail: every moment finite and no heavier tail than
  the Gaussian limit's axis can show), nan for every other law (lognormal, mixtures,
  registered families); over several laws the largest, nan if one is nan;
* ``skew``: the exact skewness (``skewness``) if every law has the same, else nan;
* ``reward_mean``, ``reward_std``: shared, else nan; ``reward_laws``: how many distinct laws;
* ``nsr_iqr``: the noise-to-signal ratio with the spread IQR / 1.349 for every law (the
  engine's ``noise_to_signal`` uses the std, and switches to IQR / 1.349 only where a
  variance is infinite: ``engine.tasks._noise_std``); same weights and value scale.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from td_jax import envs, rewards
from td_jax.engine.specs import RuleSpec, TaskSpec

SHAPES = ("df", "loc", "scale", "mean", "std", "p", "value", "sigma", "mu")
LIGHT = ("gaussian", "exponential", "uniform", "deterministic", "bernoulli", "categorical")
SYMMETRIC = ("gaussian", "uniform")
IQR_GAUSSIAN = 1.349  # the standard normal's interquartile range
_AGGREGATE = ("family", "standardize_mean", "standardize_std", "skew", "reward_mean")


def skewness(family: str, params: dict[str, Any], law: Any) -> float:
    """The exact skewness E[(R - mu)^3] / sigma^3 (invariant under ``standardize``'s positive
    affine map): 0 for the Gaussian and the uniform; Student t's 0 for df > 3 and nan for
    df <= 3 (no third moment); nan for a deterministic reward; exponential 2; lognormal
    (e^s2 + 2) sqrt(e^s2 - 1); Bernoulli sign(value) (1 - 2p) / sqrt(p (1 - p)), nan where
    p (1 - p) = 0 or value = 0; else the quantile integral on 2^16 midpoint levels."""
    if family in SYMMETRIC:
        return 0.0
    if family == "student_t":
        return 0.0 if float(params["df"]) > 3.0 else float("nan")
    if family == "deterministic":
        return float("nan")
    if family == "exponential":
        return 2.0
    if family == "lognormal":
        s2 = float(params["sigma"]) ** 2
        return float((math.exp(s2) + 2.0) * math.sqrt(math.expm1(s2)))
    if family == "bernoulli":
        p, value = float(params["p"]), float(params.get("value", 1.0))
        if p * (1.0 - p) <= 0.0 or value == 0.0:
            return float("nan")
        return float(np.sign(value) * (1.0 - 2.0 * p) / math.sqrt(p * (1.0 - p)))
    var = float(law.variance)
    if not np.isfinite(var) or var <= 0:
        return float("nan")
    u = (np.arange(2**16) + 0.5) / 2**16
    x = np.asarray(law.quantile(u), np.float64)
    return float(np.mean((x - float(law.mean)) ** 3) / var**1.5)


def _config(slot: Any) -> dict[str, Any]:
    try:
        return dict(slot.config())
    except Exception:  # noqa: BLE001 - a reward type without a config: its type's name
        return {"name": type(slot).__name__.lower()}


def _number(x: Any) -> float:
    return float(f"{float(x):.12g}")  # a standardize read back from the law: 3.0000000000000004


def law_axes(config: dict[str, Any], law: Any) -> dict[str, Any]:
    """One reward law's axes, from its ``config()`` and exact law."""
    family = str(config.get("name", ""))
    params = {**(rewards.defaults(family) if family in rewards.available() else {}), **config}
    out: dict[str, Any] = {"family": family}
    for k in SHAPES:
        v = params.get(k)
        out[k] = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
    std = config.get("standardize")
    out["standardize_mean"], out["standardize_std"] = (
        (_number(std[0]), _number(std[1])) if std is not None else (np.nan, np.nan)
    )
    df = float(params["df"]) if family == "student_t" else np.nan
    out["df_tail"] = df if family == "student_t" else (np.inf if family == "gaussian" else np.nan)
    out["inv_df"] = 1.0 / df if family == "student_t" else (0.0 if family in LIGHT else np.nan)
    out["skew"] = skewness(family, params, law)
    out["reward_mean"], out["reward_std"] = float(law.mean), float(np.sqrt(law.variance))
    return out


def _shared(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, str):
        return first if all(v == first for v in values) else "mixed"
    arr = np.asarray(values, np.float64)
    same = np.all(np.isclose(arr, arr[0], rtol=1e-9, atol=0.0, equal_nan=True))
    return float(arr[0]) if same else np.nan


def reward_axes(slots: list[Any]) -> dict[str, Any]:
    """The reward axes of a task from its reward slots (module docstring): per distinct law,
    then combined."""
    distinct: dict[str, dict[str, Any]] = {}
    for slot in slots:
        cfg = _config(slot)
        key = json.dumps(cfg, sort_keys=True, default=str)
        if key not in distinct:
            distinct[key] = law_axes(cfg, slot.law())
    per = list(distinct.values())
    out = {k: _shared([p[k] for p in per]) for k in (*_AGGREGATE, *SHAPES, "reward_std")}
    tails = np.array([p["df_tail"] for p in per], np.float64)
    inv = np.array([p["inv_df"] for p in per], np.float64)
    out["df_tail"] = float(tails.min()) if not np.isnan(tails).any() else np.nan
    out["inv_df"] = float(inv.max()) if not np.isnan(inv).any() else np.nan
    out["reward_laws"] = len(per)
    return out


def _slots(env: Any) -> list[Any]:
    return [env.reward_slot(i) for i in range(len(env.reward_labels))]


def iqr_noise_to_signal(env: Any, mode: str) -> float:
    """The noise-to-signal ratio with the spread IQR / 1.349 for every reward law: the RMS
    over the engine's visit weights of each state's one-step spread, over the RMS true
    value under the same weights (``engine.tasks.TaskInfo``'s scale)."""
    laws = env.reward_laws()
    q = np.array([[law.quantile(0.25), law.quantile(0.75)] for law in laws], np.float64)
    var = np.square((q[:, 1] - q[:, 0]) / IQR_GAUSSIAN)
    probs = np.asarray(env.outcome_probs, np.float64)
    per_state = (probs * var[np.asarray(env.reward_index, np.int64)]).sum(axis=1)
    n = env.num_states
    w = env.visit_distribution() if mode == "online" else np.full(n, 1.0 / n)
    rms = float(np.sqrt(np.sum(w * np.square(np.asarray(env.true_values(), np.float64)))))
    noise = float(np.sqrt(np.sum(w * per_state)))
    return noise / rms if rms > 1e-12 else float("inf")


def task_axes(task: TaskSpec, mode: str = "online") -> dict[str, Any]:
    """A task's axes: environment, gamma, states and instances, its reward's
    (``reward_axes``, over every instance's slots) and ``nsr_iqr`` (the instances' mean,
    as the engine pools its ratio); no program compiled."""
    built = []
    for inst in task.instances or (None,):
        params = dict(task.env_params)
        if inst is not None:
            params[task.instance_param] = inst
        built.append(envs.make(task.env, **params))
    env = built[0]
    return {
        "env": task.env,
        "gamma": float(np.asarray(env.gamma)),
        "num_states": int(env.num_states),
        "instances": ",".join(str(g) for g in task.instances),
        "num_instances": max(len(task.instances), 1),
        **reward_axes([s for e in built for s in _slots(e)]),
        "nsr_iqr": float(np.mean([iqr_noise_to_signal(e, mode) for e in built])),
    }


def rule_size(spec: RuleSpec) -> float:
    """The rule's size m (quantiles, atoms, cells or expectiles), read off the built rule:
    the width of its per-state table (aliases, the factory's defaults and ``taus`` lists
    all resolved by building it); nan for a rule that is not distributional or cannot be
    built without the tasks."""
    import jax

    from td_jax import rules as rule_lib
    from td_jax.rules.definition import canonical

    hparams = {
        k: v
        for k, v in canonical(spec.hparams).items()
        if k not in ("support", "support_tail", "support_margin")
    }
    try:
        rule = (
            rule_lib.make(spec.rule, **hparams)
            if isinstance(spec.rule, str)
            else spec.rule(**hparams)
        )
        if not getattr(rule, "distributional", False):
            return float("nan")
        leaves = jax.tree.leaves(rule.init(jax.random.PRNGKey(0), 1))
    except Exception:  # noqa: BLE001 - a rule that needs more than its hparams: no size
        return float("nan")
    widths = [np.shape(x)[-1] for x in leaves if np.ndim(x) == 2]
    return float(widths[0]) if widths else float("nan")


def rule_axes(spec: RuleSpec) -> dict[str, Any]:
    """A rule's registry name ("plugin" for a factory) and size m (``rule_size``)."""
    name = spec.rule if isinstance(spec.rule, str) else "plugin"
    return {"rule_name": name, "m": rule_size(spec)}
