"""Random-MRP tasks pooled over Garnet instances (issue 22 item 5): the runner's stream
mask, the pooled task's truth and curves, and the instance list's stated rule."""

from __future__ import annotations

import numpy as np
import pytest

import td_jax
from td_jax.catalog import get_suite
from td_jax.engine.specs import TaskSpec
from td_jax.engine.tasks import PooledTask, TaskInfo, normalised, stream_mask
from td_jax.envs import catalog

SEEDS = [5, 6, 7, 8, 9, 10]


def _envs():
    return {f"g{g}": catalog.random_mrp(num_states=4, seed=g) for g in (14, 22)}


def test_a_masked_run_computes_only_its_streams_and_matches_the_full_run():
    full = td_jax.run(["td"], _envs(), [0.1, 0.3], SEEDS, 150, num_checkpoints=4)
    mask = np.zeros((2, len(SEEDS)), bool)
    mask[0, ::2] = mask[1, 1::2] = True  # each seed on one env
    part = td_jax.run(["td"], _envs(), [0.1, 0.3], SEEDS, 150, num_checkpoints=4, streams=mask)
    a, b = full.value_error[0], part.value_error[0]
    for e in range(2):
        for n in range(len(SEEDS)):
            if mask[e, n]:  # the same stream: its draws depend on (env name, seed) only
                np.testing.assert_allclose(b[e, :, n], a[e, :, n], rtol=1e-5)
            else:
                assert np.isnan(b[e, :, n]).all()
    assert part.info["learner_updates"] == full.info["learner_updates"] // 2


@pytest.mark.parametrize(
    "streams, message",
    [
        (np.ones((2, 5), bool), "shape"),
        (np.ones((2, 6), int), "bool"),
        (np.zeros((2, 6), bool), "no (env, seed)"),
    ],
)
def test_a_bad_stream_mask_is_refused_naming_it(streams, message):
    with pytest.raises(ValueError, match=r"streams") as err:
        td_jax.run(["td"], _envs(), [0.1], SEEDS, 10, streams=streams)
    assert message in str(err.value)


def test_a_pooled_task_reads_each_seed_from_its_instance():
    spec = TaskSpec("random_mrp/gaussian", "random_mrp",
                    {"num_states": 4, "reward": "gaussian"}, instances=(14, 22))  # fmt: skip
    pooled = PooledTask(spec, "online", 600)
    one = [
        TaskInfo(TaskSpec("x", "random_mrp", {"num_states": 4, "reward": "gaussian", "seed": g}),
                 catalog.random_mrp(num_states=4, reward="gaussian", seed=g), "online", 600)
        for g in (14, 22)
    ]  # fmt: skip
    # e0 is the instances' mean; the step unit reads every instance's states.
    assert pooled.initial_error["visit"] == pytest.approx(
        np.mean([t.initial_error["visit"] for t in one])
    )
    assert pooled.weights["visit"].sum() == pytest.approx(1.0)
    assert pooled.min_visits == min(t.min_visits for t in one)
    mask = stream_mask([pooled], SEEDS)
    assert mask.tolist() == [[s % 2 == 0 for s in SEEDS], [s % 2 == 1 for s in SEEDS]]
    envs = {m.spec.label: m.env for m in pooled.members}
    result = td_jax.run(["td"], envs, [0.2], SEEDS, 200, num_checkpoints=4, streams=mask)
    curves = normalised(result, [pooled])["random_mrp/gaussian"]  # [A, N, C, W]
    assert np.isfinite(curves).all()
    for n, s in enumerate(SEEDS):
        k = s % 2
        raw = result.metrics["sq_error_visit"][0, k, :, n] / one[k].scales["visit"]
        np.testing.assert_allclose(curves[:, n, :, 0], raw, rtol=1e-6)
    # A plain task runs the full product: no mask.
    assert stream_mask(one, SEEDS) is None


# The rule benchmarks/default.toml states for its Garnet instances: every seed in [0, 60)
# whose least-visited state gets at least 4% of the stream's updates.
GARNET_SEARCH, GARNET_MIN_SHARE = 60, 0.04


def test_the_garnet_instances_are_the_ones_the_stated_rule_picks():
    picked = tuple(
        g
        for g in range(GARNET_SEARCH)
        if catalog.random_mrp(num_states=10, seed=g).visit_distribution().min() >= GARNET_MIN_SHARE
    )
    assert len(picked) >= 5
    mrp = [t for t in get_suite("default").tasks if t.env == "random_mrp"]
    assert len(mrp) == 7 and all(t.instances == picked for t in mrp)


@pytest.mark.parametrize("instances", [(1, 1), (1.5, 2), (True, 2)])
def test_bad_instances_are_refused(instances):
    with pytest.raises(ValueError, match="instances must be distinct integers"):
        TaskSpec("t", "random_mrp", {}, instances=instances)
