"""The atlas's boundary model: a depth-2 classification tree, written by hand (numpy only),
predicting whether tabular QTD's call is "faster" from the atlas's axes, with its accuracy
held out by task and one generated sentence.

Features (``FEATURES``): log10 of the noise-to-signal ratio, 1/df (Student t's tail; 0 for
laws with every moment), the skewness, gamma, and log2 m. Rows: the tested (rule, task)
pairs of the answer whose registry rule is tabular QTD (``atlas.QTD_LIKE``), else every
distributional rule of the answer. Splits minimise the Gini impurity over the midpoints of
each feature's values (Breiman, Friedman, Olshen and Stone 1984, Classification and
Regression Trees, ch. 4).

Held-out accuracy: leave-one-task-out (every row of a task, all its m, held out together;
a task pools its Garnet instances, so an instance is never split across the fold), the
majority class of the training rows beside it as the baseline. The sentence says "no
boundary found" unless the tree beats that baseline held out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FEATURES = ("log10_nsr", "inv_df", "skew", "gamma", "log2_m")
QTD_LIKE = ("qtd",)
MIN_NSR = 1e-6  # a deterministic reward's ratio 0 enters the log as this


def design(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows the model is fitted on, with the feature columns, and what they are."""
    tested = frame[(frame["status"] == "tested") & (frame["role"] == "answer")]
    rows = tested[tested["rule_name"].isin(QTD_LIKE)]
    what = "tabular QTD (every m)"
    if not len(rows):
        rows = tested[tested["distributional"].astype(str) == "True"]
        what = "every distributional rule of the answer"
    rows = rows.copy()
    nsr = rows["noise_to_signal"].astype(float).clip(lower=MIN_NSR)
    rows["log10_nsr"] = np.log10(nsr)
    rows["log2_m"] = np.log2(rows["m"].astype(float))
    keep = np.isfinite(rows[list(FEATURES)].astype(float).to_numpy()).all(axis=1)
    return rows[keep], what


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


def held_out(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Leave-one-group-out accuracy of the tree and of the training rows' majority class."""
    hits_tree, hits_major, n = 0, 0, 0
    for g in np.unique(groups):
        test = groups == g
        if test.all():  # one group: nothing to fit on
            continue
        tree = fit_tree(x[~test], y[~test])
        hits_tree += int((predict(tree, x[test]) == y[test]).sum())
        hits_major += int(((y[~test].mean() > 0.5) == y[test]).sum())
        n += int(test.sum())
    return (hits_tree / n, hits_major / n) if n else (float("nan"), float("nan"))


def condition(feature: str, threshold: float, high: bool) -> str:
    """A split's side in words."""
    op = ">" if high else "<="
    if feature == "log10_nsr":
        return f"the noise-to-signal ratio is {op} {10**threshold:.3g}"
    if feature == "inv_df":
        if threshold <= 0:
            return "the tail is " + ("a Student t's" if high else "light (every moment finite)")
        word = "below" if high else "at least"
        return f"the tail index df is {word} {1.0 / threshold:.3g}"
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


def sentence(tree: dict[str, Any], acc: float, major: float, what: str) -> str:
    """The generated sentence: the tree's "faster" region, or "no boundary found"."""
    if not np.isfinite(acc) or acc <= major:
        return (
            f"No boundary found: the depth-2 tree's held-out accuracy ({acc:.2f}) is not "
            f"above the majority class's ({major:.2f}), so the atlas does not say when "
            f"{what} converges faster than TD for the mean."
        )
    paths = faster_paths(tree)
    if not paths:
        return "QTD does not converge faster than TD for the mean anywhere on this atlas."
    if paths == [()]:
        return "QTD converges faster than TD for the mean everywhere on this atlas."
    text = "; or when ".join(" and ".join(p) for p in paths)
    return (
        f"QTD converges faster than TD for the mean when {text} (a depth-2 tree, held-out "
        f"accuracy {acc:.2f} against {major:.2f} for the majority class)."
    )


def fit_report(frame: pd.DataFrame) -> dict[str, Any]:
    """The boundary model on the atlas: its tree, held-out accuracies and sentence."""
    rows, what = design(frame)
    x = rows[list(FEATURES)].astype(float).to_numpy()
    y = rows["faster"].astype(bool).to_numpy()
    if not len(y):
        return {
            "rows": 0,
            "what": what,
            "tree": None,
            "heldout_accuracy": float("nan"),
            "majority_accuracy": float("nan"),
            "faster": 0,
            "sentence": "No boundary found: no tested (rule, task) pair to fit.",
        }
    tree = fit_tree(x, y)
    acc, major = held_out(x, y, rows["task"].to_numpy())
    return {
        "rows": int(len(y)),
        "what": what,
        "tree": tree,
        "heldout_accuracy": acc,
        "majority_accuracy": major,
        "faster": int(y.sum()),
        "tasks": rows["task"].nunique(),
        "sentence": sentence(tree, acc, major, what),
    }


def _tree_lines(tree: dict[str, Any], indent: str = "") -> list[str]:
    if tree["leaf"]:
        call = "faster" if tree["faster"] else "not faster"
        return [f"{indent}- {call} ({tree['k']} of {tree['n']} faster)"]
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
        f"on {model['rows']} tested pairs of {model['what']} ({model['faster']} called "
        "faster), predicting the call faster against not faster.",
        "",
    ]
    if model["tree"] is not None:
        lines += _tree_lines(model["tree"]) + [""]
    lines.append(
        f"Held-out accuracy (leave-one-task-out over {model.get('tasks', 0)} tasks; a "
        f"task pools its Garnet instances): {model['heldout_accuracy']:.3f}, against "
        f"{model['majority_accuracy']:.3f} for the majority class of the training "
        "rows."
    )
    return lines
