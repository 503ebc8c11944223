"""One error policy: every public entry point refuses a bad input with a ValueError naming the
argument, the value given and what is allowed, before anything compiles or runs.

Each case is (callable, kwargs, message regex). ``td_jax.run``'s work after validation is
replaced by a failure, so a case passes only if validation itself refused the input.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import td_jax
from td_jax import approx, envs, rewards, rules
from tests.helpers import tiny_mrp

NAN, INF = float("nan"), float("inf")
ENV = tiny_mrp()
CHAIN3 = envs.make("chain", num_states=3)


@pytest.fixture(autouse=True)
def _nothing_runs_after_validation(monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("the input passed validation: run went on to compute truths")

    monkeypatch.setattr(sys.modules["td_jax.runner.run"], "_truths", reached)


def run(**kwargs):
    base = {"rules": ["td"], "envs": {"tiny": ENV}, "step_sizes": [0.1], "num_seeds": 1,
            "num_steps": 10, "progress": False}  # fmt: skip
    return td_jax.run(**(base | kwargs))


def load(kind):
    """``RunResult.load`` on a bad file of the given kind (written to a temporary dir)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bad.npz"
        if kind == "text":
            path.write_text("not a result")
        elif kind == "no_meta":
            np.savez(path, x=np.zeros(3))
        elif kind == "bad_json":
            np.savez(path, meta=np.frombuffer(b"{oops", np.uint8))
        elif kind == "partial":
            meta = json.dumps({"rules": ["td"], "envs": [], "distributional": [False]})
            np.savez(path, meta=np.frombuffer(meta.encode(), np.uint8))
        else:
            path = kind
        return td_jax.RunResult.load(path)


def cases(fn, rows, key=None):
    """pytest params (fn, kwargs, pattern) from rows (kwargs, pattern), or (name, kwargs,
    pattern) where ``fn`` takes the name as ``key``."""
    out = []
    for row in rows:
        kwargs, pattern = ({key: row[0], **row[1]}, row[2]) if key else row
        label = re.sub(r" at 0x[0-9a-f]+", "", ",".join(f"{k}={v!r}" for k, v in kwargs.items()))
        out.append(pytest.param(fn, kwargs, pattern, id=f"{fn.__name__}[{label[:70]}]"))
    return out


STEPS = "step_sizes must be a non-empty 1-D sequence of numbers"
SEEDS = "num_seeds must be a positive integer or a list of seed indices"
CKPTS = r"checkpoints must be whole update counts \(a 1-D sequence of integers\)"
DECAY = r"decay must be a 1-D sequence of numbers, one per step size \(1\)"
ONE_OF = "must be True, False, 'all' or 'final'"
PROGRESS = r"progress must be None, True, False or a callable progress\(done_chunks"
F32 = r"within float32 range \(\|x\| <= 3\.403e\+38\)"
MLP = r"mlp: hidden must be non-empty positive widths \(a sequence of integers >= 1\)"
NOT_SAVED = r"RunResult\.load: .*bad\.npz is not a result written by RunResult\.save"

RUN_ROWS = [
    ({"num_steps": 10.5}, r"num_steps must be an integer >= 1, got 10\.5"),
    ({"num_steps": True}, r"num_steps must be an integer >= 1, got True"),
    ({"num_steps": 2**31}, r"num_steps must be an integer <= 2147483647 \(int32 step"),
    ({"num_checkpoints": 2.0}, r"num_checkpoints must be an integer >= 1, got 2\.0"),
    ({"num_checkpoints": True}, r"num_checkpoints must be an integer >= 1, got True"),
    ({"num_checkpoints": "5"}, r"num_checkpoints must be an integer >= 1, got '5'"),
    ({"chunk_size": 1.5}, r"chunk_size must be an integer >= 1, got 1\.5"),
    ({"micro_batch": 0}, r"micro_batch must be an integer >= 1, got 0"),
    ({"truth_atoms": True}, r"truth_atoms must be an integer >= 1, got True"),
    ({"unroll": 2.0}, r"unroll must be an integer >= 1, got 2\.0"),
    ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
    ({"seed": 1.5}, r"seed must be an integer >= 0, got 1\.5"),
    ({"seed": True}, r"seed must be an integer >= 0, got True"),
    ({"seed": "0"}, r"seed must be an integer >= 0, got '0'"),
    ({"seed": 2**32}, r"seed must be an integer <= 4294967295 \(keys fold it in as uint32\)"),
    ({"memory_fraction": 0}, r"memory_fraction must be a number in \(0, 1\], got 0"),
    ({"memory_fraction": 2}, r"memory_fraction must be a number in \(0, 1\], got 2"),
    ({"memory_fraction": NAN}, r"memory_fraction must be a number in \(0, 1\], got nan"),
    ({"memory_fraction": "0.5"}, r"memory_fraction must be a number in \(0, 1\], got '0\.5'"),
    ({"divergence_bound": True}, r"divergence_bound must be a number > 0, got True"),
    ({"divergence_bound": "1e6"}, r"divergence_bound must be a number > 0, got '1e6'"),
    ({"step_sizes": 0.1}, STEPS + r", got 0\.1"),
    ({"step_sizes": ["0.1", "0.2"]}, STEPS + r", got \['0\.1', '0\.2'\]"),
    ({"step_sizes": [True]}, STEPS + r", got \[True\]"),
    ({"step_sizes": [0.1, None]}, STEPS + r", got \[0\.1, None\]"),
    ({"step_sizes": {0.1}}, STEPS + r", got \{0\.1\}"),
    ({"step_sizes": ["a"]}, STEPS + r", got \['a'\]"),
    ({"step_sizes": []}, STEPS + r", got \[\]"),
    ({"step_sizes": [NAN]}, r"step sizes must be finite and > 0, got nan"),
    ({"step_sizes": [0.0]}, r"step sizes must be finite and > 0, got 0\.0"),
    ({"step_sizes": [1e300]}, r"float32's normal range .* got 1e\+300"),
    ({"step_sizes": [1e-50]}, r"float32's normal range .* got 1e-50"),
    ({"step_sizes": [0.1, 0.1 + 1e-12]}, r"distinct in float32 .*got \(0\.1, inf\) and"),
    ({"step_sizes": [0.1, 0.1]}, r"must be distinct, got \(0\.1, inf\) twice"),
    ({"decay": 2.0}, DECAY + r", got 2\.0"),
    ({"decay": [[1.0]]}, DECAY + r", got \[\[1\.0\]\]"),
    ({"decay": ["1"]}, DECAY + r", got \['1'\]"),
    ({"decay": [True]}, DECAY + r", got \[True\]"),
    ({"decay": [1e-50]}, r"decay scales must be >= 2\.939e-39 .*got 1e-50"),
    ({"decay": [NAN]}, r"decay scales must be > 0 \(inf: constant\), got nan"),
    ({"decay": []}, r"decay must have one entry per step size \(1\), got 0"),
    ({"num_seeds": 3.0}, SEEDS + r", got 3\.0"),
    ({"num_seeds": True}, SEEDS + r", got True"),
    ({"num_seeds": [0.0, 1.0]}, SEEDS + r", got \[0\.0, 1\.0\]"),
    ({"num_seeds": [True, False]}, SEEDS + r", got \[True, False\]"),
    ({"num_seeds": "3"}, SEEDS + r", got '3'"),
    ({"num_seeds": None}, SEEDS + r", got None"),
    ({"num_seeds": [[0, 1]]}, SEEDS + r", got \[\[0, 1\]\]"),
    ({"num_seeds": [-1]}, r"seed indices must be integers in \[0, 2\*\*32\).*got -1"),
    ({"num_seeds": [2**32]}, r"seed indices must be integers in \[0, 2\*\*32\).*got 4294967296"),
    ({"num_seeds": [0, 0]}, r"seed indices must be distinct, got 0 repeated"),
    ({"checkpoints": 5}, CKPTS + r", got 5"),
    ({"checkpoints": [[1, 2]]}, CKPTS + r", got \[\[1, 2\]\]"),
    ({"checkpoints": [1.0, 10.0]}, CKPTS + r", got \[1\.0, 10\.0\]"),
    ({"checkpoints": [True, 5]}, CKPTS + r", got \[True, 5\]"),
    ({"checkpoints": ["1", "5"]}, CKPTS + r", got \['1', '5'\]"),
    (
        {"checkpoints": [3, 3]},
        r"checkpoints must increase strictly within \[1, num_steps=10\], got \[3, 3\]",
    ),
    ({"checkpoints": [5, 11]}, r"within \[1, num_steps=10\], got \[5, 11\]"),
    ({"mode": "Online"}, r"mode must be one of \('online', 'synchronous'\), got 'Online'"),
    ({"mode": ["online"]}, r"mode must be one of .*got \['online'\]"),
    ({"distribution_metric": 1}, ONE_OF + ", got 1"),
    ({"distribution_metric": 0.0}, ONE_OF + r", got 0\.0"),
    ({"distribution_metric": np.array([1, 2])}, ONE_OF + r", got array\(\[1, 2\]\)"),
    ({"keep_distributions": "no"}, r"keep_distributions must be True or False, got 'no'"),
    ({"keep_distributions": 1}, r"keep_distributions must be True or False, got 1"),
    ({"progress": "yes"}, PROGRESS + r".*got 'yes'"),
    ({"progress": 0}, PROGRESS + r".*got 0"),
    ({"schedule": 0.5}, r"schedule must be a callable count -> multiplier, got 0\.5"),
    (
        {"schedule": lambda t: jnp.ones(3)},
        r"schedule must return a scalar multiplier .*shape=\(3,\)",
    ),
    ({"schedule": lambda t: "x"}, r"schedule must be a callable .*it raised"),
    (
        {"rules": {"td"}},
        r"rules must be a mapping \{name: rule\}, a list or one rule, got \{'td'\}",
    ),
    ({"rules": None}, r"rules must be a mapping .*got None"),
    ({"rules": {1: "td"}}, r"rule names must be non-empty strings, got 1"),
    ({"rules": {"": "td"}}, r"rule names must be non-empty strings, got ''"),
    ({"rules": ["td"] * 2}, r"rule names must be unique, got duplicates \['td'\] \(name them"),
    ({"rules": [1]}, r"rule 'rule0' must be a td_jax\.UpdateRule, got <class 'int'>"),
    ({"rules": ["nope"]}, r"unknown rule 'nope'"),
    ({"rules": []}, r"run needs at least one rule, got an empty rule list"),
    ({"envs": "chain"}, r"env 'chain' must be an object, .*\(build it with td_jax\.envs\.make\)"),
    ({"envs": {1: ENV}}, r"env names must be non-empty strings, got 1"),
    ({"envs": [CHAIN3, CHAIN3]}, r"env names must be unique, got duplicates \['chain'\]"),
    ({"envs": None}, r"envs must be a mapping \{name: env\}, a list or one env, got None"),
    (
        {"envs": {"x": object()}},
        r"env 'x' does not implement td_jax.protocols.MRPLike \(it has no 'num_states', 'reset'",
    ),
    (
        {"rules": ["td_lambda"], "mode": "synchronous"},
        r"rule 'td_lambda' cannot run in synchronous mode",
    ),
]

ENV_ROWS = [
    ("chain", {"gamma": True}, r"chain: gamma must be a finite number, got True"),
    ("chain", {"gamma": "0.9"}, r"chain: gamma must be a finite number, got '0\.9'"),
    ("chain", {"gamma": 1.5}, r"chain: gamma must be in \[0, 1\], got 1\.5"),
    ("chain", {"gamma": NAN}, r"chain: gamma must be a finite number, got nan"),
    ("chain", {"num_states": 0}, r"chain: num_states must be an integer >= 1, got 0"),
    ("chain", {"num_states": 2.0}, r"chain: num_states must be an integer >= 1, got 2\.0"),
    (
        "chain",
        {"rewards": "gaussian"},
        r"chain: rewards must be a list of 5 rewards \(one per state\), got 'gaus",
    ),
    ("two_state", {"rewards": "ab"}, r"two_state: rewards must be a list of 2 rewards, got 'ab'"),
    ("two_state", {"switch": True}, r"two_state: switch must be a finite number, got True"),
    ("random_mrp", {"ergodic": "no"}, r"random_mrp: ergodic must be True or False, got 'no'"),
    ("random_mrp", {"ergodic": 0}, r"random_mrp: ergodic must be True or False, got 0"),
    (
        "random_mrp",
        {"mean_scale": -1.0},
        r"random_mrp: mean_scale must be >= 0 \(the std of the state means\), got",
    ),
    ("random_mrp", {"seed": 1.5}, r"random_mrp: seed must be an integer >= 0, got 1\.5"),
    (
        "continuous_walk",
        {"max_jump": 1e-9},
        r"continuous_walk: max_jump must be at least one grid step, 1 / \(num_st",
    ),
    ("random_walk", {"num_states": 4}, r"random_walk: num_states must be odd"),
    ("maze", {}, r"unknown environment 'maze'; available: bandit"),
]

REWARD_ROWS = [
    ("gaussian", {"std": True}, r"gaussian: std must be a finite number, got True"),
    ("gaussian", {"std": "1"}, r"gaussian: std must be a finite number, got '1'"),
    ("gaussian", {"std": -1.0}, r"gaussian: std must be > 0, got -1\.0"),
    ("gaussian", {"mean": 1e39}, r"gaussian: mean must be a finite number " + F32),
    ("bernoulli", {"p": True}, r"bernoulli: p must be a finite number, got True"),
    (
        "categorical",
        {"values": ["1", "2"]},
        r"categorical: values must be a 1-D sequence of finite numbers, got \['1",
    ),
    (
        "categorical",
        {"values": [[0, 1]], "probs": [[0.5, 0.5]]},
        r"categorical: values must be a 1-D sequence .*got \[\[0, 1\]\]",
    ),
    (
        "categorical",
        {"values": [True, False]},
        r"categorical: values must be a 1-D sequence .*got \[True, False\]",
    ),
    (
        "gaussian",
        {"standardize": (True, 1)},
        r"gaussian: standardize must be a 1-D sequence .*got \(True, 1\)",
    ),
    ("bimodal", {"means": ("0", "1")}, r"bimodal: means must be a 1-D sequence .*got \('0', '1'\)"),
    ("gaussian", {"capacity": True}, r"gaussian: capacity must be an integer >= 1, got True"),
    ("gaussian", {"standardize": (0, -1)}, r"gaussian: standardize std must be >= 0, got -1\.0"),
]

RULE_ROWS = [
    ("ctd", {"v_min": True}, r"ctd: v_min must be a finite number, got True"),
    (
        "ctd",
        {"init_value": 100.0},
        r"ctd: init_value must be in \[v_min, v_max\] = \[-10\.0, 10\.0\], got 100",
    ),
    ("ctd", {"v_min": 2.0, "v_max": 1.0}, r"ctd: v_min must be < v_max, got v_min=2\.0"),
    ("td_lambda", {"lambda_": True}, r"td_lambda: lambda must be in \[0, 1\], got True"),
    ("td_lambda", {"lam": "0.5"}, r"td_lambda: lambda must be in \[0, 1\], got '0\.5'"),
    ("td_lambda", {"lambda_": None}, r"td_lambda: lambda must be in \[0, 1\], got None"),
    ("td", {"init_value": "1"}, r"td: init_value must be a finite number, got '1'"),
    ("td", {"init_value": True}, r"td: init_value must be a finite number, got True"),
    (
        "td",
        {"init_value": np.array([1.0, 2.0])},
        r"td: init_value must be a finite number, got array",
    ),
    ("td", {"init_value": 1e39}, r"td: init_value must be a finite number " + F32),
    ("qtd", {"num_quantiles": True}, r"qtd: num_quantiles must be an integer >= 1, got True"),
    ("qtd", {"m": 2.5}, r"qtd: num_quantiles must be an integer >= 1, got 2\.5"),
    (
        "edrl",
        {"taus": "0.5"},
        r"edrl: taus must be a non-empty 1-D sequence of levels in \(0, 1\), got '",
    ),
    ("edrl", {"taus": 0.5}, r"edrl: taus must be a non-empty 1-D sequence .*got 0\.5"),
    ("edrl", {"taus": [True]}, r"edrl: taus must be a non-empty 1-D sequence .*got \[True\]"),
    ("edrl", {"taus": [[0.2, 0.4]]}, r"edrl: taus must be a non-empty 1-D sequence .*got \[\[0\.2"),
    (
        "edrl",
        {"taus": [0.2, 1.0]},
        r"edrl: taus must be levels in the open interval \(0, 1\), got 1\.0",
    ),
    (
        "dopamine_quantile",
        {"alpha_plus": [True], "alpha_minus": [0.5]},
        r"dopamine_quantile: alpha_plus must be a non-empty 1-D sequence of non-neg",
    ),
    (
        "dopamine_quantile",
        {"alpha_plus": ["0.1"], "alpha_minus": ["0.2"]},
        r"dopamine_quantile: alpha_plus must be a .*got \['0\.1'\]",
    ),
    (["td"], {}, r"unknown rule \['td'\]; available rules: ctd"),
    ("edrl", {"num_iterations": 1.0}, r"edrl: num_iterations must be an integer >= 1, got 1\.0"),
]

APPROX_ROWS = [
    ("td", {"approximator": {"name": "mlp", "hidden": [32.7]}}, MLP + r", got \[32\.7\]"),
    ("td", {"approximator": {"name": "mlp", "hidden": [True]}}, MLP + r", got \[True\]"),
    ("td", {"approximator": {"name": "mlp", "hidden": "32"}}, MLP + r", got '32'"),
    ("td", {"approximator": {"name": "mlp", "hidden": 32}}, MLP + r", got 32"),
    (["td"], {}, r"unknown parametric rule \['td'\]; available: td"),
    ("td_lambda", {"lambda_": True}, r"td_lambda: lambda must be in \[0, 1\], got True"),
    ("ctd", {"init_value": 100.0}, r"ctd: init_value must be in \[v_min, v_max\]"),
    (
        "td",
        {"features": {"name": "random", "num_features": 2.0}},
        r"random features: num_features must be an integer >= 1, got 2\.0",
    ),
]

LOAD_ROWS = [  # RunResult.load on a bad file
    ({"kind": "text"}, NOT_SAVED + r" \(ValueError: This file contains pickled"),
    ({"kind": "no_meta"}, NOT_SAVED + r" \(KeyError: 'meta is not a file"),
    ({"kind": "bad_json"}, NOT_SAVED + r" \(JSONDecodeError"),
    ({"kind": "partial"}, NOT_SAVED + r" \(KeyError: 'step_sizes is not a file"),
    ({"kind": None}, r"RunResult\.load: path must be a str or os\.PathLike, got None"),
]


CASES = (
    cases(run, RUN_ROWS)
    + cases(envs.make, ENV_ROWS, "name")
    + cases(rewards.make, REWARD_ROWS, "name")
    + cases(rules.make, RULE_ROWS, "name")
    + cases(approx.make, APPROX_ROWS, "rule")
    + cases(load, LOAD_ROWS)
)


@pytest.mark.parametrize(("fn", "kwargs", "pattern"), CASES)
def test_bad_input_is_refused_with_a_message(fn, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_steps": np.int64(10), "seed": np.int64(3), "num_seeds": np.arange(2)},
        {"step_sizes": np.array([0.1, 0.2], np.float32), "divergence_bound": np.float32(1e6)},
        {"step_sizes": jnp.asarray([0.1, 0.2]), "checkpoints": np.array([1, 5, 10])},
        {"num_seeds": range(3), "decay": [np.inf], "distribution_metric": np.True_},
        {"rules": rules.make("td"), "envs": ENV, "divergence_bound": INF, "unroll": 2},
        {"progress": lambda done, total: None, "schedule": lambda t: 1.0, "truth_atoms": 1},
    ],
)
def test_good_inputs_pass_validation(kwargs):
    """Numpy and jax numbers, ranges and a lone rule or env are accepted as they are."""
    with pytest.raises(AssertionError, match="the input passed validation"):
        run(**kwargs)


@pytest.mark.parametrize(
    ("name", "hparams", "pattern"),
    [
        ("dopamine_expectile", {"num_cells": 5, "taus": [0.2, 0.8]}, r"not num_cells=5 with them"),
        ("dopamine_quantile", {"num_cells": 3, "alpha_plus": [1.0], "alpha_minus": [1.0]},
         r"not num_cells=3 with them"),
        ("edrl", {"num_expectiles": 9, "taus": [0.3, 0.7]}, r"not num_expectiles=9 with them"),
    ],
)  # fmt: skip
def test_a_count_given_beside_explicit_levels_is_refused(name, hparams, pattern):
    with pytest.raises(ValueError, match=pattern):
        td_jax.rules.make(name, **hparams)
