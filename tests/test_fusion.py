"""compute_once: an exact identity that keeps a per-stream value out of per-learner kernels."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import td_jax
from td_jax.fusion import compute_once
from td_jax.rules.dopamine import uniform_indices
from td_jax.runner import keys


def test_compute_once_is_an_exact_identity():
    f = jax.jit(compute_once)
    special = np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45, -3.5], np.float32)
    assert np.asarray(compute_once(jnp.asarray(special))).tobytes() == special.tobytes()  # eager
    for x in (
        special,
        np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 7,
        np.uint32(2**32 - 1),
        np.random.default_rng(0).normal(size=(5, 1, 3)).astype(np.float32),
        np.array([[True, False, True]]),
        np.zeros((0, 3), np.float32),
        np.array([-1, 7], np.int8),
    ):
        y = np.asarray(f(jnp.asarray(x)))
        assert y.dtype == np.asarray(x).dtype and y.shape == np.shape(x)
        assert y.tobytes() == np.asarray(x).tobytes()  # bits, so NaN and -0.0 count too
    batched = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(jax.vmap(f)(jnp.asarray(batched)), batched)
    # An unbatched value read by batched learners, as the runner uses it.
    shared = jnp.arange(4, dtype=jnp.int32)
    out = jax.vmap(lambda row: row[f(shared)], in_axes=0)(jnp.asarray(batched))
    assert np.array_equal(out, batched)


def _reference_indices(key_data: np.ndarray, n: int) -> np.ndarray:
    """The cell indices as first defined: JAX's own threefry bits, floor(u n), per key row."""
    keys_ = jax.random.wrap_key_data(jnp.asarray(key_data), impl="threefry2x32")
    bits = np.asarray(jax.vmap(lambda k: jax.random.bits(k, (n,), jnp.uint32))(keys_))
    u = ((bits >> 9).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-23)
    return np.minimum(np.floor(u * np.float32(n)), n - 1).astype(np.int32)


@pytest.mark.parametrize("n", [1, 7, 20])
def test_uniform_indices_are_unchanged_for_every_key_implementation(n):
    data = np.asarray(jax.random.bits(jax.random.key(5), (50, 2), jnp.uint32))
    want = _reference_indices(data, n)
    fused = jax.jit(jax.vmap(lambda d: uniform_indices(keys.wrap(d), n)))(data)
    default = jax.jit(
        jax.vmap(lambda d: uniform_indices(jax.random.wrap_key_data(d, impl="threefry2x32"), n))
    )(data)
    assert np.array_equal(fused, want) and np.array_equal(default, want)
    assert want.min() >= 0 and want.max() <= n - 1


def _hash_fusion_shapes(rule_name: str, learners: int) -> tuple[list[str], str]:
    """Output shapes of the compiled fusions that hash (threefry's shifts), and the HLO."""
    rule = td_jax.rules.make(rule_name)
    states = jax.vmap(lambda _: rule.init(jax.random.key(0), 10))(jnp.arange(learners))
    transition = td_jax.Transition(jnp.int32(1), jnp.float32(0.5), jnp.float32(0.9), jnp.int32(2))
    key = keys.wrap(jnp.array([1, 2], jnp.uint32))
    update = jax.jit(jax.vmap(rule.update, in_axes=(0, None, 0, None)))
    text = update.lower(states, transition, jnp.linspace(0.1, 1, learners), key).compile()
    text = text.as_text()
    shapes = []
    for comp in re.split(r"\n(?=%|ENTRY)", text):
        if "shift-left" in comp:
            shapes.append(comp.splitlines()[0].rsplit("->", 1)[1].strip(" {"))
    return shapes, text


@pytest.mark.parametrize("rule_name", ["dopamine_quantile", "dopamine_expectile"])
def test_dopamine_indices_are_hashed_once_per_stream_not_per_learner(rule_name):
    """The runner's learners of one stream share its rule key: the index hash must run once
    for all of them (20 words), in straight-line code, not inside every learner's kernel
    (7 x 20 words) nor in JAX's rolled CPU loop. Fails if ``compute_once`` is dropped."""
    shapes, text = _hash_fusion_shapes(rule_name, learners=7)
    assert shapes, "no hashing fusion found in the compiled update"
    sizes = [math.prod(int(d) for d in re.findall(r"\d+", s.split("{")[0].split("[", 1)[1]))
             for s in shapes]  # fmt: skip
    assert all(size == 20 for size in sizes), shapes
    assert " while(" not in text
