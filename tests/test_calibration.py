"""Calibration machinery (SCIENCE.md section 9): the refined step search lands at the
optimum wherever the grid falls; the re-selection bootstrap carries the selection into
the interval; the binomial interval of the nulls' rate; the estimand's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from td_jax.analysis import sample_complexity as sc
from td_jax.engine import refine, search, tuning
from td_jax.engine.scoring import estimand
from td_jax.engine.tuning import Config, Selection

RATIO = 10 ** (1 / 3)  # the default grid's ratio
MARGIN = 0.05


def _bowl(a_star: float, n_star: float, k: float):
    """N(alpha) = N* (1 + k (log alpha - log a*)^2), a smooth optimum (constant steps)."""

    def objective(configs):
        return {c: n_star * (1 + k * np.log(c.alpha / a_star) ** 2) for c in configs}

    return objective


def _grid(offset: float) -> list[Config]:
    return [Config("constant", float(f"{1e-3 * RATIO ** (i + offset):.6g}"), np.inf)
            for i in range(10)]  # fmt: skip


@pytest.mark.parametrize("k", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("offset", np.linspace(0.0, 1.0, 7, endpoint=False))
def test_compass_search_lands_within_the_margin_from_every_grid_offset(offset, k):
    """From every offset of the grid (in grid steps) the refined choice is within 5% of
    the known optimum, while the coarse grid alone can be off by up to k (log r / 2)^2."""
    objective = _bowl(a_star=0.037, n_star=1000.0, k=k)
    start = objective(_grid(offset))
    scores, searches = refine.refine(objective, start, ("constant",), np.log(RATIO), MARGIN)
    search = searches["constant"]
    assert search.status == "flat"
    assert scores[search.center] <= 1000.0 * (1 + MARGIN)
    for probe in refine.neighbours(search.center, search.h):  # flat to the margin
        assert scores[probe] <= scores[search.center] * (1 + MARGIN)


@pytest.mark.parametrize("diagonals", [True, False])
@pytest.mark.parametrize("offset", [0.0, 0.3, 0.7])
def test_compass_search_tunes_alpha0_and_c_jointly(offset, diagonals):
    """A harmonic landscape with a tilted (correlated) bowl in (log alpha0, log c): the
    search moves along both axes and lands within the margin of the optimum."""
    a0, c0 = 0.5, 2.0

    def objective(configs):
        out = {}
        for c in configs:
            x, y = np.log(c.alpha / a0), np.log(c.c / c0)
            out[c] = 500.0 * (1 + 0.8 * x**2 + 0.5 * y**2 + 0.6 * x * y)
        return out

    grid = [
        Config("harmonic", 1.0, float(f"{0.1 * 10 ** (0.5 * (i + offset)):.6g}")) for i in range(5)
    ]  # fmt: skip  (alpha0 fixed on the coarse grid)
    scores, searches = refine.refine(objective, objective(grid), ("harmonic",),
                                     np.log(RATIO), MARGIN, diagonals=diagonals)  # fmt: skip
    search = searches["harmonic"]
    assert search.status == "flat"
    assert scores[search.center] <= 500.0 * (1 + MARGIN)
    assert search.center.alpha != 1.0  # alpha0 was tuned, not only c


def _valley(configs):
    """A narrow valley along alpha0^2 c = const (the harmonic family's trade-off of a
    larger alpha0 with a faster decay) whose floor, N 40 at alpha0 2.6 and c 3, lies far
    along it from the coarse grid's alpha0 = 1 row."""
    out = {}
    for c in configs:
        x, y = np.log(c.alpha / 2.6), np.log(c.c / 3.0)
        across, along = (2 * x + y) / np.sqrt(5), (x - 2 * y) / np.sqrt(5)
        out[c] = 40.0 * (1 + 30.0 * across**2 + 0.3 * along**2)
    return out


@pytest.mark.parametrize("offset", np.linspace(0.0, 1.0, 6, endpoint=False))
def test_diagonal_probes_follow_a_valley_that_stops_the_axes(offset):
    """With the diagonals of (log alpha0, log c) the search reaches the valley's floor
    within the margin from every offset of the grid, given 12 rounds (with the headline
    suite's 4 refinements, from 2 of these 6 offsets: 1.07-1.67x above it elsewhere); along
    the axes alone every step climbs the valley's side, and it stops (flat, to the margin)
    1.9-2.3x above it."""
    grid = [Config("harmonic", 1.0, float(f"{c * RATIO**offset:.6g}"))
            for c in (0.1, 0.316, 1.0, 3.16, 10.0, 31.6)]  # fmt: skip
    coarse = _valley(grid)
    assert min(coarse.values()) > 2 * 40.0
    scores, searches = refine.refine(
        _valley, coarse, ("harmonic",), np.log(RATIO), MARGIN, diagonals=True
    )
    assert scores[searches["harmonic"].center] <= 40.0 * (1 + MARGIN)
    scores, searches = refine.refine(
        _valley, coarse, ("harmonic",), np.log(RATIO), MARGIN, diagonals=False
    )
    assert searches["harmonic"].status == "flat"
    assert scores[searches["harmonic"].center] > 1.8 * 40.0


@pytest.mark.parametrize("offset", [0.0, 0.25, 0.5, 0.75])
def test_a_search_starts_on_every_alpha0_row_and_finds_the_deeper_basin(offset):
    """Two basins in (log alpha0, log c): a wide shallow one (N 100 at alpha0 0.3, c 10)
    and a narrow deep one (N 50 at alpha0 1.55, c 0.5, between the grid's alpha0 rows)
    that the coarse grid reads worse than the shallow one. One search per alpha0 row
    reaches the deep floor from every offset of the grid; the search from the best coarse
    point alone stays in the shallow basin."""

    def objective(configs):
        out = {}
        for c in configs:
            x1, y1 = np.log(c.alpha / 0.3), np.log(c.c / 10.0)
            x2, y2 = np.log(c.alpha / 1.55), np.log(c.c / 0.5)
            out[c] = min(
                100.0 * (1 + 0.5 * x1**2 + 0.1 * y1**2), 50.0 * (1 + 6.0 * x2**2 + 2.0 * y2**2)
            )
        return out

    grid = [Config("harmonic", a, float(f"{c * RATIO ** offset:.6g}"))
            for a in (0.3, 1.0, 3.0) for c in (0.1, 0.316, 1.0, 3.16, 10.0, 31.6)]  # fmt: skip
    coarse = objective(grid)
    assert min(coarse, key=coarse.get).alpha == 0.3  # the grid's best is the shallow basin
    scores, searches = refine.refine(objective, coarse, ("harmonic",), np.log(RATIO), MARGIN,
                                     within=1.5)  # fmt: skip
    assert scores[searches["harmonic"].center] <= 50.0 * (1 + MARGIN)
    scores, searches = refine.refine(
        objective, coarse, ("harmonic",), np.log(RATIO), MARGIN, within=1.0
    )  # fmt: skip  (one start: the grid's best)
    assert scores[searches["harmonic"].center] > 90.0


def test_an_unreached_family_is_not_refined():
    search = refine.Compass("constant", 0.7, MARGIN)
    assert search.propose({Config("constant", 0.1, np.inf): np.nan}) == []
    assert search.status == "unreached"


class _Unit:
    """The attributes ``estimand.cell_boot`` reads."""

    def __init__(self, steps, tuning, evaluation, selection):
        self.steps = steps
        self.tuning_curves = {"task": {c: x[:, :, None] for c, x in tuning.items()}}
        self.evaluation = {"task": {c: x[:, :, None] for c, x in evaluation.items()}}
        self.selected = {("task", "visit"): [selection]}
        self.candidates = {("task", "visit"): [list(tuning)]}


def _curves(rng, n_seeds, steps, rate, noise):
    """Per-seed error curves ~ rate / t with multiplicative noise per seed."""
    level = rng.lognormal(0.0, noise, size=(n_seeds, 1))
    return level * rate / steps[None, :]


def test_the_reselection_bootstrap_carries_the_selection_into_the_interval():
    """Two configurations tie on the tuning seeds (in distribution); on the evaluation
    seeds one needs 1.5x the updates of the other. Re-selecting inside the bootstrap puts
    both in the interval of N; a bootstrap at the fixed selection does not."""
    rng = np.random.default_rng(0)
    steps = np.unique(np.geomspace(1, 10_000, 200).astype(np.int64))
    a, b = Config("constant", 0.1, np.inf), Config("constant", 0.2, np.inf)
    tuning = {a: _curves(rng, 20, steps, 1.0, 0.3), b: _curves(rng, 20, steps, 1.0, 0.3)}
    evaluation = {a: _curves(rng, 100, steps, 1.0, 0.05), b: _curves(rng, 100, steps, 1.5, 0.05)}
    eps = np.array([1e-3])
    unit = _Unit(steps, tuning, evaluation, Selection(a, 1000.0, ""))
    boot = estimand.cell_boot(unit, "task", 0, "visit", eps, 2000, split=False, margin=MARGIN)
    lo, hi = estimand.interval(boot.boot)
    n_a = sc.crossing_times(steps, sc.mean_curve(evaluation[a]), eps)[0]
    n_b = sc.crossing_times(steps, sc.mean_curve(evaluation[b]), eps)[0]
    assert boot.n[0] == pytest.approx(n_a)
    assert lo[0] <= n_a and hi[0] >= n_b * 0.98
    fixed = sc.bootstrap_n(steps, evaluation[a], eps, reps=2000)
    assert fixed[2][0] < n_b * 0.9  # without re-selection the interval misses b


def test_without_noise_the_bootstrap_keeps_a_selection_made_by_the_tie_rule():
    """Deterministic curves: b is 1.5% better than a on the tuning seeds, a near-tie that
    ``tuning.select`` resolves to a (the smaller step). Every resample must re-select a,
    so the interval is the point (an argmin picked b: an interval excluding its point)."""
    steps = np.unique(np.geomspace(1, 10_000, 200).astype(np.int64))
    a, b = Config("constant", 0.1, np.inf), Config("constant", 0.2, np.inf)
    ones = np.ones((8, 1))
    tuning_curves = {a: ones * (1.0 / steps), b: ones * (0.985 / steps)}
    evaluation = {a: ones * (1.0 / steps), b: ones * (0.9 / steps)}
    eps = np.array([1e-3])
    (sel,) = tuning.select(steps, {c: x[0] for c, x in tuning_curves.items()}, eps,
                           tie=0.5 * MARGIN)  # fmt: skip
    assert sel.config == a
    unit = _Unit(steps, tuning_curves, evaluation, sel)
    boot = estimand.cell_boot(unit, "task", 0, "visit", eps, 500, split=False, margin=MARGIN)
    lo, hi = estimand.interval(boot.boot)
    assert lo[0] == hi[0] == pytest.approx(boot.n[0])


def test_a_flat_edge_selection_is_reselected_on_the_full_tuning_seeds():
    """Noise-free: 0.8 (an edge) is best, 0.1 (an edge) within the tie, and the flat rule
    takes 0.2, interior and within 1 + margin of 0.1 but 6% above the best. Re-selection
    on the full data (and on every resample: no noise) must keep 0.2, or the point falls
    outside its own interval."""
    steps = np.unique(np.geomspace(1, 10_000, 200).astype(np.int64))
    alphas, ns = (0.1, 0.2, 0.4, 0.8), (102.4, 106.0, 110.0, 100.0)
    configs = [Config("constant", a, np.inf) for a in alphas]
    curves = {c: np.ones((8, 1)) * (n * 0.1 / steps) for c, n in zip(configs, ns, strict=True)}
    eps = np.array([0.1])
    (sel,) = tuning.select(steps, {c: x[0] for c, x in curves.items()}, eps,
                           tie=0.5 * MARGIN, flat=MARGIN)  # fmt: skip
    assert sel.config == configs[1] and sel.flat
    order = [sel.config] + sorted(
        (c for c in configs if c != sel.config),
        key=lambda c: tuning.tie_key(c, tuning.edge_of(c, configs)),
    )
    weights = estimand.tuning_weights(8, 200, split=False)
    share = estimand.support(steps, [curves[c] for c in order], eps[0], weights, True, MARGIN)
    assert share[0] == 1.0
    tn = np.array([[sc.crossing_times(steps, curves[c][0], eps)[0] for c in order]])
    assert estimand.reselect(tn, False, MARGIN)[0] != 0  # the tie alone would leave it


def test_the_support_finds_the_configurations_resamples_would_select():
    """Three configurations: a and b tie on the tuning seeds (in distribution), c needs
    twice the updates. Resampling the tuning seeds re-selects a or b, never c; a
    selection made by the tie rule keeps its tolerance (the share of a, in front, is at
    least b's)."""
    rng = np.random.default_rng(3)
    steps = np.unique(np.geomspace(1, 10_000, 200).astype(np.int64))
    curves = [_curves(rng, 20, steps, 1.0, 0.3), _curves(rng, 20, steps, 1.0, 0.3),
              _curves(rng, 20, steps, 2.0, 0.3)]  # fmt: skip
    weights = estimand.tuning_weights(20, 1000, split=False)
    share = estimand.support(steps, curves, 1e-3, weights, flat=False, margin=MARGIN)
    assert share.sum() == pytest.approx(1.0)
    assert share[2] == 0.0 and share[1] >= 0.05
    assert share[0] >= share[1]
    # The same resamples as the bootstrap's (a split-seed rule has its own stream).
    assert np.array_equal(weights, sc.resample_weights(20, 1000, estimand.TUNE_SEED))
    assert not np.array_equal(weights, estimand.tuning_weights(20, 1000, split=True))


def test_the_interval_of_s_carries_the_searchs_resolution():
    """A task without noise (every resample the same) still has an interval: the tie
    tolerance on either side, so two searches that ended within it agree."""
    res = estimand.test(np.log(0.94), np.full(500, np.log(0.94)), MARGIN)
    assert res.high - res.low == pytest.approx(2 * np.log1p(MARGIN / 2))
    other = estimand.test(np.log(0.93), np.full(500, np.log(0.93)), MARGIN)
    assert other.low <= res.high and res.low <= other.high


def test_clopper_pearson_matches_scipy():
    for k, n in [(0, 20), (3, 84), (10, 10), (7, 50)]:
        lo, hi = estimand.clopper_pearson(k, n)
        ref = scipy.stats.binomtest(k, n).proportion_ci(method="exact")
        assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-10)
    assert np.isnan(estimand.clopper_pearson(0, 0)[0])


def test_the_test_calls_only_beyond_the_margin():
    rng = np.random.default_rng(1)
    inside = estimand.test(0.01, rng.normal(0.01, 0.001, 4000), MARGIN)
    assert inside.p_value == 1.0  # |log S| within log(1.05): H0 holds at the point
    beyond = estimand.test(0.3, rng.normal(0.3, 0.02, 4000), MARGIN)
    assert beyond.p_value < 1e-6 and beyond.low > np.log1p(MARGIN)


def test_the_band_excludes_floors_early_and_unreached_eps():
    eps = np.array([0.5, 0.1, 0.03, 0.01, 0.003])
    band = np.array([False, True, True, True, True])
    c = Config("constant", 0.1, np.inf)
    ok = Selection(c, 500.0, "")
    sel_rule = [ok, Selection(c, 5.0, ""), ok, ok, Selection(c, np.nan, "", reached=False)]
    sel_base = [ok] * 5
    mask = estimand.band_of(band, sel_rule, sel_base, (0.003, 0.0), eps)
    # 0.1: early (5 updates); 0.003: unreached and below 3x the floor.
    assert mask.tolist() == [False, False, True, True, False]
    high_floor = estimand.band_of(band, sel_rule, sel_base, (0.5, 0.0), eps)
    assert not high_floor.any()
    assert estimand.band_reason(band, sel_rule, sel_base, (0.5, 0.0), eps) == "cannot reach"


def test_per_env_step_sizes_run_each_task_its_own_sweep_bit_for_bit():
    """``td_jax.run`` with one row of step sizes per env (the bench's per-task tuning in
    one program) gives each env exactly what a run of that env alone gives."""
    from td_jax import envs, rules, run

    tasks = {
        "chain": envs.make("chain", num_states=3, reward={"name": "gaussian"}),
        "bandit": envs.make("bandit", reward={"name": "bernoulli", "p": 0.3}),
    }
    rule = rules.make("td")
    steps = np.array([[0.05, 0.5], [0.02, 0.2]])
    decay = np.array([[np.inf, 50.0], [np.inf, 20.0]])
    kw = {"checkpoints": [10, 100, 300], "distribution_metric": False}
    both = run({"td": rule}, tasks, steps, [0, 1], 300, decay=decay, **kw)
    for e, (name, env) in enumerate(tasks.items()):
        alone = run({"td": rule}, {name: env}, list(steps[e]), [0, 1], 300,
                    decay=list(decay[e]), **kw)  # fmt: skip
        np.testing.assert_array_equal(alone.value_error[0, 0], both.value_error[0, e])
    frame = both.to_dataframe()
    assert set(frame.loc[frame["env"] == "bandit", "step_size"]) == {0.02, 0.2}
    with pytest.raises(ValueError, match=r"one\s+row per env \(2\); got 3 row\(s\)"):
        run({"td": rule}, tasks, np.ones((3, 2)) * 0.1, [0], 10)


def test_a_suite_that_calls_without_a_tested_null_is_an_error():
    """An answer with no tested null control has no calibration: refused in one line,
    for the prediction and the control suites alike (``calls.calibrated_null_rates``)."""
    import pandas as pd

    from td_jax import catalog
    from td_jax.engine.errors import BenchError
    from td_jax.engine.scoring import calls

    untested = pd.DataFrame({"rule": ["qtd", "td_split"], "role": ["answer", "null control"],
                             "status": ["tested", "neither reached"],
                             "verdict": ["slower", "neither reached"]})  # fmt: skip
    for suite in (catalog.get_suite("quick"), catalog.get_suite("control_quick")):
        with pytest.raises(BenchError) as info:
            calls.calibrated_null_rates(suite, untested)
        message = str(info.value)
        assert "\n" not in message and f"suite {suite.name}" in message
        assert "no null control was tested" in message and "td_split" in message
    tested = untested.assign(status="tested")
    rates = calls.calibrated_null_rates(catalog.get_suite("quick"), tested)
    assert (rates["tested"], rates["called"]) == (1, 0)


def test_a_band_selection_on_a_grid_edge_makes_the_pair_under_tuned_not_narrower():
    """The estimand's band is fixed in advance: an eligible band eps whose selection is
    still on an edge leaves the pair untested, instead of dropping that eps (two
    replicates would then average over different eps)."""
    c = Config("constant", 0.1, np.inf)
    ok = Selection(c, 100.0, "")
    edge = Selection(c, 300.0, "alpha high")
    eps = np.array([1.0, 0.1, 0.01])
    band = np.array([False, True, True])
    floors = (0.0, 0.0)
    assert not estimand.under_tuned(band, [ok] * 3, [ok] * 3, floors, eps)
    assert estimand.band_of(band, [ok] * 3, [ok] * 3, floors, eps).tolist() == [0, 1, 1]
    rule = [ok, ok, edge]
    assert estimand.under_tuned(band, rule, [ok] * 3, floors, eps)
    assert estimand.under_tuned(band, [ok] * 3, rule, floors, eps)  # the baseline's edge too
    # An edge outside the band (the transient) or below 3x the floor does not count.
    assert not estimand.under_tuned(band, [edge, ok, ok], [ok] * 3, floors, eps)
    assert not estimand.under_tuned(band, rule, [ok] * 3, (0.005, 0.0), eps)


def test_candidates_cover_the_target_share_of_resamples_or_stop_at_the_cap():
    """The most often re-selected configurations join the selection (index 0) until they
    cover the target or reach the cap; a configuration never re-selected never joins."""
    share = np.array([0.40, 0.05, 0.30, 0.0, 0.20, 0.05])
    assert estimand.covering(share, 0.95, 6) == [2, 4, 1]  # 0.40 + 0.30 + 0.20 + 0.05
    assert estimand.covering(share, 0.95, 3) == [2, 4]  # the cap counts the selection
    assert estimand.covering(share, 0.60, 6) == [2]
    assert estimand.covering(np.array([1.0, 0.0]), 0.95, 6) == []
    assert estimand.covering(np.array([0.5, 0.0, 0.0]), 0.95, 6) == []  # none re-selected


def test_free_rows_of_the_evaluation_take_the_most_reselected_configurations():
    """Task b has two free rows of the padded evaluation: they take the configurations with
    the largest share summed over b's cells (y: 0.3 + 0.2, then z: 0.25), not x (0.1), and
    never a configuration no resample picks; task a, already at the row's size, gains none.
    A cell's candidates are then its selection and every evaluated configuration its
    resamples pick, with the share they cover."""
    s, x, y, z, q = (Config("harmonic", a, 1.0) for a in (0.1, 0.2, 0.3, 0.4, 0.5))
    shares = {
        ("b", "visit", 0): ([s, x, y, q], np.array([0.4, 0.1, 0.3, 0.0])),
        ("b", "visit", 1): ([s, y, z], np.array([0.55, 0.2, 0.25])),
        ("a", "visit", 0): ([x, y], np.array([0.5, 0.5])),
    }
    need = {"a": {x, s, z}, "b": {s}}
    search.fill_free_rows(need, shares, size=3)
    assert need == {"a": {x, s, z}, "b": {s, y, z}}
    cands, cover = search.cell_candidates(shares[("b", "visit", 0)], need["b"])
    assert cands == [s, y] and cover == pytest.approx(0.7)
    cands, cover = search.cell_candidates(shares[("b", "visit", 1)], need["b"])
    assert cands == [s, y, z] and cover == pytest.approx(1.0)


def test_edges_of_labels_a_grid_as_edge_of_does_one_by_one():
    """``edges_of`` (one pass over the grid) on a constant row and a harmonic row with one
    probe off it: the labels a reader would give, and ``edge_of``'s for each."""
    grid = [Config("constant", a, np.inf) for a in (0.1, 0.3, 1.0)]
    grid += [Config("harmonic", 1.0, c) for c in (0.1, 1.0, 10.0)]
    assert tuning.edges_of(grid) == ["alpha low", "", "alpha high", "c low", "", "c high"]
    probed = [*grid, Config("harmonic", 3.0, 1.0)]
    # Two alpha0 values now: along c = 1 the row is the low end and the probe the high one;
    # the row's other c values have only alpha0 = 1, so they are both ends at once.
    assert tuning.edges_of(probed)[3:] == ["alpha low"] * 3 + ["alpha high"]
    assert [tuning.edge_of(c, probed) for c in probed] == tuning.edges_of(probed)


def test_search_ends_count_the_selected_familys_search_in_band_cells_of_the_estimand():
    """``calls.search_ends``: one count per band cell of the estimand axes reached on the
    tuning seeds after at least 10 updates, by the status of the selected family's search
    ("searching": stopped by the round budget; none: "not searched"); transient cells,
    secondary axes, early and unreached cells are not counted."""
    import dataclasses

    import pandas as pd

    from td_jax import catalog
    from td_jax.engine.scoring import calls

    suite = catalog.get_suite("quick")
    cells = pd.DataFrame({
        "weighting": ["visit"] * 4 + ["uniform"] + ["visit"] * 3,
        "regime": ["band", "band", "band", "transient", "band", "band", "band", "band"],
        "schedule": ["constant", "harmonic(c=1)", "harmonic(c=3)", "constant", "constant",
                     "constant", "harmonic(c=2)", "constant"],
        "search": ["constant:flat,harmonic:searching", "constant:flat,harmonic:searching",
                   "harmonic:resolution", "constant:searching", "constant:searching", None,
                   "constant:flat", "constant:flat"],
        "reached_tuning": [True] * 7 + [False],
        "n_tuning": [50.0, 60.0, 70.0, 80.0, 90.0, 40.0, 30.0, float("nan")],
    })  # fmt: skip
    ends = calls.search_ends(suite, cells)
    got = {k: ends[k] for k in ("searched", "flat", "searching", "resolution", "not searched")}
    assert got == {"searched": 5, "flat": 1, "searching": 1, "resolution": 1, "not searched": 2}
    assert ends["max_refinements"] == suite.max_refinements
    assert f"1 at the budget of {suite.max_refinements} refinement rounds" in ends["line"]
    early = cells.assign(n_tuning=9.0)
    assert calls.search_ends(suite, early)["searched"] == 0
    none = calls.search_ends(dataclasses.replace(suite, max_refinements=0), cells)
    assert none["searched"] == 0 and "none (max_refinements = 0)" in none["line"]


def test_a_split_null_whose_tuning_curves_are_the_baselines_is_a_pipeline_check():
    """A split-seed replicate on a task with no randomness (every seed the same stream)
    gets the baseline's curves bit for bit, so its S is 1 whatever the statistics: it is
    labelled a pipeline check, not counted among the nulls that can fail. Curves that
    differ anywhere, or a reparameterised copy (another grid), stay nulls."""
    import dataclasses
    from types import SimpleNamespace

    from td_jax import catalog
    from td_jax.engine.scoring import calls

    suite = catalog.get_suite("quick")
    spec = {r.label: r for r in suite.rules}
    cfgs = [Config("constant", 0.1, np.inf), Config("harmonic", 1.0, 3.0)]
    curve = {c: np.linspace(1.0, 0.01, 8)[:, None] * (i + 1) for i, c in enumerate(cfgs)}

    def unit(label, curves):
        return SimpleNamespace(spec=spec[label], tuning={"chain/deterministic": curves})

    base = unit("td", dict(curve))
    same = unit("td_split", {c: v.copy() for c, v in curve.items()})
    why = calls.seed_invariant(suite, same, base, "chain/deterministic")
    assert why == calls.SAME_STREAM
    assert calls.role_of(suite, "td_split", why) == "pipeline check"
    assert calls.role_of(suite, "td_split", "") == "null control"
    moved = {c: v.copy() for c, v in curve.items()}
    moved[cfgs[1]][-1, 0] *= 1 + 1e-6
    assert calls.seed_invariant(suite, unit("td_split", moved), base, "chain/deterministic") == ""
    assert calls.seed_invariant(suite, same, None, "chain/deterministic") == ""
    rescaled = SimpleNamespace(spec=dataclasses.replace(spec["td_rescaled_a"],
                                                        tuning_seeds=(40, 41)),
                               tuning=same.tuning)  # fmt: skip
    assert calls.seed_invariant(suite, rescaled, base, "chain/deterministic") == ""
    assert calls.seed_invariant(suite, unit("td_rescaled_a", dict(curve)), base,
                                "chain/deterministic") == ""  # fmt: skip
