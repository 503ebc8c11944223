"""Compile once, call many: a second identical ``run`` neither traces nor compiles."""

from __future__ import annotations

import re

import numpy as np
import pytest

import td_jax
from td_jax.rules import registry
from td_jax.runner import compile_cache, resources
from tests.helpers import tiny_mrp


def _counting_td(counter: dict[str, int]) -> td_jax.UpdateRule:
    """TD(0) whose update counts how often JAX traces it."""
    base = td_jax.rules.make("td")

    def update(state, transition, step_size, key):
        counter["traces"] += 1
        return base.update(state, transition, step_size, key)

    return base._replace(update=update)


def test_a_second_identical_run_does_not_trace_or_compile():
    counter = {"traces": 0}
    rule = _counting_td(counter)
    env = {"tiny": tiny_mrp()}
    kwargs = dict(num_checkpoints=4, progress=False)
    first = td_jax.run({"counted": rule}, env, [0.1, 0.2], 3, 50, **kwargs)
    traces, compiles = counter["traces"], compile_cache.stats()["compiles"]
    assert traces >= 1 and first.info["compile_seconds"] and not first.info["programs_reused"]
    second = td_jax.run({"counted": rule}, env, [0.1, 0.2], 3, 50, **kwargs)
    assert counter["traces"] == traces  # not traced again
    assert compile_cache.stats()["compiles"] == compiles  # not compiled again
    assert second.info["compile_seconds"] == {} and second.info["programs_reused"]
    np.testing.assert_array_equal(first.value_error, second.value_error)
    # Step sizes are traced: other values of the same count reuse the program too.
    td_jax.run({"counted": rule}, env, [0.3, 0.4], 3, 50, **kwargs)
    assert compile_cache.stats()["compiles"] == compiles
    # A change of static configuration (the checkpoints) compiles a new program.
    td_jax.run({"counted": rule}, env, [0.1, 0.2], 3, 50, num_checkpoints=5, progress=False)
    assert compile_cache.stats()["compiles"] == compiles + 1


def test_registry_names_reuse_programs_and_hyperparameters_do_not():
    env = {"tiny": tiny_mrp()}
    assert td_jax.rules.make("qtd", num_quantiles=4) is td_jax.rules.make("qtd", num_quantiles=4)
    assert td_jax.rules.make("qtd", num_quantiles=4) is not td_jax.rules.make("qtd")
    td_jax.run({"q": td_jax.rules.make("qtd", num_quantiles=4)}, env, [0.1], 2, 20, progress=False)
    compiles = compile_cache.stats()["compiles"]
    again = td_jax.run(
        {"q": td_jax.rules.make("qtd", num_quantiles=4)}, env, [0.1], 2, 20, progress=False
    )
    assert again.info["programs_reused"] and compile_cache.stats()["compiles"] == compiles
    td_jax.run({"q": td_jax.rules.make("qtd", num_quantiles=5)}, env, [0.1], 2, 20, progress=False)
    assert compile_cache.stats()["compiles"] == compiles + 1


def _same(a, b) -> None:
    for x, y in ((a.value_error, b.value_error), (a.distribution_error, b.distribution_error),
                 (a.final_values["tiny"], b.final_values["tiny"])):  # fmt: skip
        np.testing.assert_array_equal(x, y)


def test_runs_sized_for_the_same_streams_share_one_program_and_equal_plain_runs():
    """A suite's evaluation (more seeds) reuses its tuning runs' program: ``compile_streams``
    fixes the program's shape, and the numbers equal a run sized for its own streams."""
    env, rule = {"tiny": tiny_mrp()}, td_jax.rules.make("qtd", num_quantiles=3)
    kwargs = dict(checkpoints=[5, 30, 70], progress=False, distribution_metric=True)
    steps, decay = [0.05, 0.3, 0.9], [np.inf, 4.0, np.inf]
    tune = td_jax.run({"q": rule}, env, steps, 4, 70, decay=decay, compile_streams=4, **kwargs)
    assert tune.info["compile_seconds"]  # compiled for 4 streams
    evaluation = td_jax.run(
        {"q": rule}, env, steps, list(range(10, 21)), 70, decay=decay, compile_streams=4, **kwargs
    )
    assert evaluation.info["compile_seconds"] == {} and evaluation.info["programs_reused"]
    plain = td_jax.run({"q": rule}, env, steps, list(range(10, 21)), 70, decay=decay, **kwargs)
    _same(evaluation, plain)
    with pytest.raises(ValueError, match="compile_streams must be an integer >= 1, got 0"):
        td_jax.run({"q": rule}, env, steps, 4, 70, compile_streams=0, **kwargs)


def test_a_rescaled_rule_runs_on_its_base_rules_program_with_the_same_numbers():
    """``rules.rescaled(rule, k)`` reuses ``rule``'s program (the steps times k, traced) and
    gives the numbers of the rescaled update compiled on its own, bit for bit."""
    env, base = {"tiny": tiny_mrp()}, td_jax.rules.make("td")
    kwargs = dict(checkpoints=[5, 30, 70], progress=False, decay=[np.inf, 3.0, np.inf])
    steps = [0.07, 0.4, 1.1]
    td_jax.run({"td": base}, env, steps, 5, 70, **kwargs)
    copy = td_jax.rules.rescaled(base, 1.37)
    assert copy.rescale_of.base is base and copy.rescale_of.factor == 1.37
    shared = td_jax.run({"copy": copy}, env, steps, 5, 70, **kwargs)
    assert shared.info["compile_seconds"] == {} and shared.info["programs_reused"]
    alone = td_jax.run({"copy": copy._replace(rescale_of=None)}, env, steps, 5, 70, **kwargs)
    assert alone.info["compile_seconds"]  # its own program
    _same(shared, alone)
    assert not np.array_equal(shared.value_error, td_jax.run(
        {"td": base}, env, steps, 5, 70, **kwargs).value_error)  # fmt: skip
    # A copy whose update was replaced since runs its own update, not the base's program.
    doubled = copy._replace(update=lambda s, t, a, k: copy.update(s, t, 2.0 * a, k))
    again = td_jax.run({"doubled": doubled}, env, steps, 5, 70, **kwargs)
    assert again.info["compile_seconds"]
    assert not np.array_equal(again.value_error, shared.value_error)


def test_reregistering_a_rule_drops_what_make_had_built():
    registry.register("cache_probe", lambda **hp: td_jax.rules.make("td", **hp), "probe")
    try:
        old = td_jax.rules.make("cache_probe")
        assert td_jax.rules.make("cache_probe") is old
        registry.register(
            "cache_probe", lambda **hp: td_jax.rules.make("qtd", **hp), "probe", overwrite=True
        )
        assert td_jax.rules.make("cache_probe") is not old
    finally:
        registry._REGISTRY.pop("cache_probe", None)


def test_unrolled_loop_gives_the_same_results():
    env = {"tiny": tiny_mrp()}
    rules = ["td", "qtd", "ctd"]
    # 47 updates with checkpoints that leave remainders for an unroll of 4.
    kw = dict(checkpoints=[1, 3, 10, 23, 47], progress=False, distribution_metric=True)
    plain = td_jax.run(rules, env, [0.05, 0.3], 4, 47, unroll=1, **kw)
    unrolled = td_jax.run(rules, env, [0.05, 0.3], 4, 47, unroll=4, **kw)
    # The same updates in the same order; XLA may fuse the unrolled body's multiply-adds
    # differently (CTD's projection moved by 1 ulp here), so equal to float32 rounding.
    for field in ("value_error", "distribution_error"):
        np.testing.assert_allclose(getattr(plain, field), getattr(unrolled, field), rtol=1e-6)
    for name in plain.final_values:
        np.testing.assert_allclose(
            plain.final_values[name], unrolled.final_values[name], rtol=1e-6, atol=1e-6
        )
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="unroll must be an integer >= 1"):
            td_jax.run(["td"], env, [0.1], 1, 10, unroll=bad, progress=False)


def _copies(rule: str, env: dict) -> tuple[int, np.ndarray]:
    """Copy instructions in the compiled program of a fresh run, and its final values."""
    compile_cache.clear()
    result = td_jax.run([rule], env, [0.1, 0.2], 3, 30, progress=False)
    (program,) = compile_cache._programs.values()
    return len(re.findall(r" copy\(", program.as_text())), result.final_values["tiny"]


@pytest.mark.parametrize("rule", ["td_lambda", "ctd"])
def test_region_analysis_drops_loop_copies_and_keeps_values(rule, monkeypatch):
    """COMPILER_OPTIONS' copy insertion by region analysis drops copies of loop-carried
    buffers (each a kernel launch per update); copies move bytes, so values are unchanged."""
    env = {"tiny": tiny_mrp()}
    tuned, tuned_values = _copies(rule, env)
    options = dict(resources.COMPILER_OPTIONS["cpu"])
    assert options.pop("xla_cpu_copy_insertion_use_region_analysis") is True
    monkeypatch.setitem(resources.COMPILER_OPTIONS, "cpu", options)
    plain, plain_values = _copies(rule, env)
    compile_cache.clear()
    assert tuned < plain, (tuned, plain)
    np.testing.assert_array_equal(tuned_values, plain_values)


def test_persistent_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "xla"))
    assert compile_cache.default_cache_dir() == str(tmp_path / "xla")
    monkeypatch.setenv(compile_cache.ENV_VAR, "")
    assert compile_cache.default_cache_dir() == ""  # empty: off
    monkeypatch.delenv(compile_cache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.default_cache_dir() == str(tmp_path / "td_jax" / "xla")


def test_the_cache_threshold_follows_the_environment(monkeypatch):
    monkeypatch.delenv(compile_cache.MIN_COMPILE_ENV, raising=False)
    assert compile_cache.min_compile_seconds() == 0.5
    monkeypatch.setenv(compile_cache.MIN_COMPILE_ENV, "0")
    assert compile_cache.min_compile_seconds() == 0.0
    for bad in ("-1", "fast", "inf", "nan"):
        monkeypatch.setenv(compile_cache.MIN_COMPILE_ENV, bad)
        with pytest.raises(
            ValueError, match=rf"TD_JAX_CACHE_MIN_COMPILE_SECONDS must be .* got '{bad}'"
        ):
            compile_cache.min_compile_seconds()
