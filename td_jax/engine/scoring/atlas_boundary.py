"""The atlas's boundary model: a depth-2 classification tree, written by hand (numpy and
scipy only), predicting the sign of tabular QTD's call (faster against slower) from the
atlas's axes, with its accuracy held out by task and one generated sentence.

Features (``FEATURES``): log10 of the IQR-based noise-to-signal ratio (``nsr_iqr``), 1/df
(``inv_df``: Student t's tail, 0 for the Gaussian and the light-tailed families; rows where
it is nan are left out), the skewness (a Student t's enters as 0: symmetric, though
undefined for df <= 3), gamma, and log2 m. Rows: the (rule, task) pairs of
the answer with a call, "faster" or "slower" (a pair with no detectable difference, or not
tested, has no sign to predict), whose registry rule is tabular QTD
(``atlas.QTD_LIKE``), else those of every distributional rule of the answer; the sentence
names the rules fitted. Splits minimise the Gini impurity over the midpoints of each
feature's values (Breiman, Friedman, Olshen and Stone 1984, Classification and Regression
Trees, ch. 4).

Held-out accuracy: leave-one-task-out (every row of a task, all its m, held out together;
a task pools its Garnet instances, so an instance is never split across the fold), the
best constant (the majority class of the rows held out) beside it as the baseline. A
boundary is found only with at least ``MIN_TASKS`` tasks and the held-out accuracy's exact
binomial 95% lower bound (Clopper and Pearson 1934) above the majority's accuracy; else the
sentence says "No boundary found (n tasks, accuracy x vs majority y)".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from td_jax.engine.scoring.estimand import clopper_pearson

FEATURES = ("log10_nsr", "inv_df", "skew", "gamma", "log2_m")
QTD_LIKE = ("qtd",)
MIN_NSR = 1e-6  # a deterministic reward's ratio 0 enters the log as this
MIN_TASKS = 8  # fewer tasks: no boundary is claimed
CALLS = ("faster", "slower")


def design(frame: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """The rows the model is fitted on, with the feature columns; what they are, and the
    rule family the sentence names."""
    called = frame[
        (frame["status"] == "tested") & (frame["role"] == "answer") & frame["verdict"].isin(CALLS)
    ]
    rows = called[called["rule_name"].isin(QTD_LIKE)]
    what, subject = "tabular QTD (every m)", "QTD"
    if not len(rows):
        rows = called[called["distributional"].astype(str) == "True"]
        names = ", ".join(sorted(set(rows["rule_name"].astype(str))))
        what = f"the distributional rules of the answer ({names or 'none'})"
        subject = f"distributional TD ({names})" if names else "distributional TD"
    rows = rows.copy()
    nsr = rows["nsr_iqr"].astype(float).clip(lower=MIN_NSR)
    rows["log10_nsr"] = np.log10(nsr)
    rows["log2_m"] = np.log2(rows["m"].astype(float))
    symmetric = rows["family"] == "student_t"  # df <= 3: skewness undefined, the law symmetric
    rows["skew"] = rows["skew"].astype(float).where(~symmetric, 0.0)
    keep = np.isfinite(rows[list(FEATURES)].astype(float).to_numpy()).all(axis=1)
    return rows[keep], what, subject


def _gini(y: np.ndarray) -> float:
    if not len(y):
        return 0.0
    p = y.mean()
    return 2.0 * p * (1.0 - p) * len(y)


def _leaf(y: np.ndarray) -> dict[str, Any]:
    return {
        "leaf": True,
        "faster": bool(len(y) and y.mean() > 0.5),
        "n": int(len(y)),
        "k": int(y.sum()),
    }


def fit_tree(x: np.ndarray, y: np.ndarray, depth: int = 2) -> dict[str, Any]:
    """A classification tree of at most ``depth`` levels: a node is ``{"feature", "threshold",
    "low", "high"}`` (x <= threshold goes low) or a leaf ``{"faster", "n", "k"}``."""
    best = (_gini(y), None, None)
    if depth > 0 and 0 < y.sum() < len(y):
        for j in range(x.shape[1]):
            values = np.unique(x[:, j])
            for t in (values[:-1] + values[1:]) / 2:
                low = x[:, j] <= t
                g = _gini(y[low]) + _gini(y[~low])
                if g < best[0] - 1e-12:
                    best = (g, j, float(t))
    _, j, t = best
    if j is None:
        return _leaf(y)
    low = x[:, j] <= t
    return {
        "leaf": False,
        "feature": FEATURES[j],
        "threshold": t,
        "low": fit_tree(x[low], y[low], depth - 1),
        "high": fit_tree(x[~low], y[~low], depth - 1),
    }


def predict(tree: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """bool[N]: the tree's call "faster" for each row of ``x``."""
    if tree["leaf"]:
        return np.full(len(x), tree["faster"])
    j = FEATURES.index(tree["feature"])
    low = x[:, j] <= tree["threshold"]
    out = np.empty(len(x), bool)
    out[low] = predict(tree["low"], x[low])
    out[~low] = predict(tree["high"], x[~low])
    return out


def held_out(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[int, int, int]:
    """Leave-one-group-out: (rows held out, the tree's hits, the majority class's hits).

    The baseline predicts the majority class of all the rows held out, max(k, n - k) of n:
    the best constant. (The majority of each fold's training rows would be
    anti-correlated with the held-out group's class wherever the classes are near even,
    which would make the baseline look worse than a coin.)"""
    hits_tree, n, held = 0, 0, []
    for g in np.unique(groups):
        test = groups == g
        if test.all():  # one group: nothing to fit on
            continue
        tree = fit_tree(x[~test], y[~test])
        hits_tree += int((predict(tree, x[test]) == y[test]).sum())
        n += int(test.sum())
        held.append(y[test])
    k = int(np.concatenate(held).sum()) if held else 0
    return n, hits_tree, max(k, n - k)


def condition(feature: str, threshold: float, high: bool) -> str:
    """A split's side in words."""
    op = ">" if high else "<="
    if feature == "log10_nsr":
        return f"the noise-to-signal ratio is {op} {10**threshold:.3g}"
    if feature == "inv_df":
        if threshold <= 0:
            return "the tail is " + ("a Student t's" if high else "light (every moment finite)")
        if high:
            return f"the reward is Student t with df below {1.0 / threshold:.3g}"
        return f"the tail is light or a Student t's with df at least {1.0 / threshold:.3g}"
    if feature == "log2_m":
        return f"m {op} {2**threshold:.3g}"
    name = {"skew": "the reward's skewness", "gamma": "gamma"}[feature]
    return f"{name} is {op} {threshold:.3g}"


def faster_paths(tree: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The conjunctions of conditions that lead to a leaf calling "faster"."""
    if tree["leaf"]:
        return [path] if tree["faster"] else []
    f, t = tree["feature"], tree["threshold"]
    return faster_paths(tree["low"], (*path, condition(f, t, False))) + faster_paths(
        tree["high"], (*path, condition(f, t, True))
    )


def found(model: dict[str, Any]) -> bool:
    """Whether the model claims a boundary (module docstring)."""
    return bool(
        model["tasks"] >= MIN_TASKS
        and np.isfinite(model["accuracy_low"])
        and model["accuracy_low"] > model["majority_accuracy"]
    )


def sentence(tree: dict[str, Any], model: dict[str, Any], subject: str) -> str:
    """The generated sentence: the tree's "faster" region, or "No boundary found"."""
    if not found(model):
        return (
            f"No boundary found ({model['tasks']} tasks, accuracy "
            f"{model['heldout_accuracy']:.2f} vs majority {model['majority_accuracy']:.2f}): "
            f"a boundary needs at least {MIN_TASKS} tasks and the held-out accuracy's 95% "
            f"lower bound ({model['accuracy_low']:.2f}) above the majority's."
        )
    paths = faster_paths(tree)
    if not paths:
        return f"{subject} converges slower than TD for the mean wherever it is called."
    if paths == [()]:
        return f"{subject} converges faster than TD for the mean wherever it is called."
    text = "; or when ".join(" and ".join(p) for p in paths)
    return (
        f"{subject} converges faster than TD for the mean (rather than slower) when {text} "
        f"(a depth-2 tree on the pairs with a call, held-out accuracy "
        f"{model['heldout_accuracy']:.2f}, 95% lower bound {model['accuracy_low']:.2f}, "
        f"against {model['majority_accuracy']:.2f} for the majority class)."
    )


def fit_report(frame: pd.DataFrame) -> dict[str, Any]:
    """The boundary model on the atlas: its tree, held-out accuracies and sentence."""
    rows, what, subject = design(frame)
    x = rows[list(FEATURES)].astype(float).to_numpy()
    y = (rows["verdict"] == "faster").to_numpy(bool)
    model: dict[str, Any] = {
        "rows": int(len(y)),
        "what": what,
        "tree": fit_tree(x, y) if len(y) else None,
        "faster": int(y.sum()),
        "tasks": int(rows["task"].nunique()),
    }
    n, hits, major = held_out(x, y, rows["task"].to_numpy())
    model |= {
        "heldout": n,
        "heldout_accuracy": hits / n if n else float("nan"),
        "majority_accuracy": major / n if n else float("nan"),
        "accuracy_low": clopper_pearson(hits, n)[0],  # nan for n = 0
    }
    model["sentence"] = sentence(model["tree"], model, subject)
    return model


def _tree_lines(tree: dict[str, Any], indent: str = "") -> list[str]:
    if tree["leaf"]:
        call = "faster" if tree["faster"] else "slower"
        return [f"{indent}- {call} ({tree['k']} of {tree['n']} called faster)"]
    f, t = tree["feature"], tree["threshold"]
    return (
        [f"{indent}- if {condition(f, t, False)}:"]
        + _tree_lines(tree["low"], indent + "  ")
        + [f"{indent}- if {condition(f, t, True)}:"]
        + _tree_lines(tree["high"], indent + "  ")
    )


def markdown(model: dict[str, Any]) -> list[str]:
    """The model's section of results/<suite>/atlas.md."""
    lines = [
        f"A depth-2 classification tree (Gini splits) on {', '.join(FEATURES)}, fitted "
        f"on the {model['rows']} pairs of {model['what']} with a call ({model['faster']} "
        f"faster, {model['rows'] - model['faster']} slower), predicting the sign of the "
        "call: faster against slower. Pairs with no detectable difference, bounds and "
        "untested pairs are left out (they have no sign).",
        "",
    ]
    if model["tree"] is not None:
        lines += _tree_lines(model["tree"]) + [""]
    lines.append(
        f"Held-out accuracy (leave-one-task-out over {model['tasks']} tasks; a "
        f"task pools its Garnet instances): {model['heldout_accuracy']:.3f} (exact 95% "
        f"lower bound {model['accuracy_low']:.3f}), against "
        f"{model['majority_accuracy']:.3f} for the majority class (the best constant "
        f"prediction). A boundary needs at least {MIN_TASKS} tasks and the lower bound above the "
        "majority's."
    )
    return lines
