"""Dabney et al. (2020)'s Fig. 4 test on simulated recordings
(``td_jax.reproductions.dabney2020_recordings``): the estimators recover the truth without
noise, the test passes at low noise and fails at high noise, and the controls behave.

The cells are the suite's population (rates from ``dabney2020.draw_rates``) with the exact
tau-expectiles of the variable-magnitude reward as reversal points; seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from td_jax import rewards
from td_jax.reproductions import dabney2020
from td_jax.reproductions import dabney2020_recordings as rec

LAW = rewards.make("dabney_magnitude").law()


@pytest.fixture(scope="module")
def cells() -> rec.Cells:
    ap, am = dabney2020.draw_rates(40, 2020)
    return rec.Cells(ap, am, LAW.expectile(ap / (ap + am)))


def _estimates(cells: rec.Cells, noise: float, experiments: int = 8, trials: int = 200):
    config = rec.RecordingConfig(trials=(trials,), experiments=experiments)
    draws = rec.draw_sessions(LAW, (experiments, 40), trials, np.random.default_rng(11))
    unit = rec.response_unit(cells, LAW)
    return rec.estimate(cells, LAW, draws, noise, unit, config)


def test_fit_kink_recovers_a_hand_made_response_curve():
    m = LAW.locs
    c, a_plus, a_minus = 4.0, 0.9, 0.3
    mean = np.where(m > c, a_plus, a_minus) * (m - c)
    counts = np.array([[3.0, 1, 2, 5, 4, 2, 1], [3.0, 1, 2, 5, 4, 2, 0]])  # no trial at 20 uL
    kink = rec.fit_kink(counts, counts * mean, m)
    np.testing.assert_allclose(kink.reversal, c, atol=1e-3)
    np.testing.assert_allclose(kink.alpha_minus, a_minus, rtol=1e-3)
    np.testing.assert_allclose(kink.alpha_plus, a_plus, rtol=1e-3)  # 10 uL alone suffices
    np.testing.assert_allclose(kink.tau, a_plus / (a_plus + a_minus), atol=1e-3)
    # Only one magnitude on each side: the kink is not identified, but no slope is negative.
    flat = rec.fit_kink(np.array([0.0, 0, 0, 4, 4, 0, 0]), np.array([0.0, 0, 0, -2, 3, 0, 0]), m)
    assert flat.alpha_plus >= 0 and flat.alpha_minus >= 0


def test_spearman_and_its_interval_match_scipy_and_bonett_wright():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 5, 30))
    y = y + x
    x[1, 4] = np.nan  # pairs with a nan are dropped
    rho, n = rec.spearman(x, y)
    for k in range(5):
        ok = np.isfinite(x[k])
        assert rho[k] == pytest.approx(scipy.stats.spearmanr(x[k, ok], y[k, ok]).statistic)
    assert list(n) == [30, 29, 30, 30, 30]
    low, high = rec.rho_interval(np.array(0.5), np.array(40), 0.95)
    half = 1.959964 * np.sqrt((1 + 0.125) / 37)
    assert (low, high) == pytest.approx((np.tanh(np.arctanh(0.5) - half),
                                         np.tanh(np.arctanh(0.5) + half)))  # fmt: skip


def test_noiseless_sessions_recover_tau_and_reversal_points(cells):
    for est in _estimates(cells, noise=0.0).values():
        np.testing.assert_allclose(est.reversal, est.true_reversal, atol=0.01)
        np.testing.assert_allclose(est.tau, np.broadcast_to(cells.tau, est.tau.shape), atol=0.005)
        rho, n = rec.spearman(est.tau, est.reversal)
        assert (n == 40).all() and (rec.rho_interval(rho, n, 0.95)[0] > 0.9).all()


def test_the_test_passes_at_low_noise_and_fails_at_high_noise(cells):
    low_noise = _estimates(cells, noise=0.25)["split halves"]
    assert np.median(np.abs(low_noise.tau - cells.tau)) < 0.05
    rho, n = rec.spearman(low_noise.tau, low_noise.reversal)
    assert (rec.rho_interval(rho, n, 0.95)[0] > 0).all()  # every experiment
    high = _estimates(cells, noise=16.0, experiments=40)["split halves"]
    rho, n = rec.spearman(high.tau, high.reversal)
    low, top = rec.rho_interval(rho, n, 0.95)
    assert low[0] <= 0 <= top[0]  # experiment 0's interval includes 0 ...
    assert np.mean(low > 0) <= 0.2  # ... and most others' too


def test_controls_shuffled_population_and_shared_trials(cells):
    """Without a relation in the truth, split halves rarely find one (nominal 2.5%); both
    estimates from the same noisy trials find one most of the time at high noise."""
    config = rec.RecordingConfig(trials=(200,), experiments=40, noise_levels=(0.5, 4.0),
                                 example_noise=(0.5,))  # fmt: skip
    table, examples = rec.recordings(cells, LAW, config)
    shuffled = table[table["population"] == "shuffled"].set_index(["estimate", "noise"])
    assert (shuffled.loc["split halves", "share_above_zero"] <= 0.1).all()
    assert shuffled.loc[("same trials", 4.0), "share_above_zero"] >= 0.5
    calls = rec.calls(config, table).set_index("noise")
    assert calls.loc[0.5, "reproduced"] and not calls.loc[4.0, "reproduced"]
    assert set(examples) == {0.5} and examples[0.5][0].shape == (40,)
    assert "reproduced at noise 0.5; NOT reproduced at 4" in rec.claim_line(config, table)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [("trials", (201,), "even integers >= 8"), ("headline_trials", 300, "one of trials"),
     ("noise_levels", (-1.0,), "numbers >= 0"), ("power", 0.0, r"in \(0, 1\]")],
)  # fmt: skip
def test_recording_config_names_the_field_the_value_and_what_is_allowed(field, value, allowed):
    kwargs = {field: value}
    if field == "noise_levels":
        kwargs["example_noise"] = ()
    with pytest.raises(ValueError, match=f"recordings.{field} must be {allowed}.*got"):
        rec.RecordingConfig(**kwargs)
