"""The runner's metrics against independent computations (scipy)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from td_jax.runner import run
from td_jax.runner.metrics import log_checkpoints, value_rmse, wasserstein1, wasserstein1_to_sorted
from tests.helpers import tiny_mrp


@pytest.mark.parametrize("seed", range(12))
def test_wasserstein1_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    # Seeds 0-3: one learned atom (TD's point mass, a separate code path).
    k, n = (1 if seed < 4 else rng.integers(2, 12)), rng.integers(1, 60)
    a, pa = rng.normal(size=k).round(1), rng.dirichlet(np.ones(k))  # rounding makes ties
    b = np.sort(rng.normal(size=n).round(1))
    pb = rng.dirichlet(np.ones(n)) * (rng.random(n) > 0.2) + 1e-12  # zero-weight padding
    pb /= pb.sum()
    truth = scipy.stats.wasserstein_distance(a, b, pa, pb)
    args = [jnp.asarray(x, jnp.float32) for x in (a, pa, b, pb)]
    assert float(wasserstein1(*args)) == pytest.approx(truth, abs=1e-5)
    assert float(wasserstein1_to_sorted(*args)) == pytest.approx(truth, abs=1e-5)


def test_value_rmse_and_checkpoints():
    assert float(value_rmse(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]))) == pytest.approx(
        np.sqrt(5.0)
    )
    points = log_checkpoints(10_000, 20)
    assert points[0] == 1 and points[-1] == 10_000 and np.all(np.diff(points) > 0)


def test_final_only_distribution_metric_equals_every_checkpoint():
    env = {"tiny": tiny_mrp()}
    full = run(
        ["qtd"], env, [0.1], 3, 200, num_checkpoints=5, progress=False, distribution_metric=True
    )
    final = run(["qtd"], env, [0.1], 3, 200, num_checkpoints=5, progress=False)  # the default
    np.testing.assert_array_equal(
        final.distribution_error[..., -1], full.distribution_error[..., -1]
    )
    assert np.isnan(final.distribution_error[..., :-1]).all()
    np.testing.assert_array_equal(final.value_error, full.value_error)
    with pytest.raises(ValueError, match="distribution_metric must be"):
        run(["qtd"], env, [0.1], 1, 10, distribution_metric="sometimes", progress=False)
