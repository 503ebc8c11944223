"""Paper reproductions with code of their own, each a custom suite (``td-jax bench --suite
NAME``). A reproduction that the comparison protocol runs as it is, Rowland et al. (ICML
2023: QTD vs TD for the mean, across reward noise), is a suite file instead:
``benchmarks/rowland2023.toml``.

One module per paper; each defines its ``SUITE`` (listed by ``td_jax.catalog``),
a frozen ``Config``
with a reduced ``Config.quick()`` for tests, ``compute(config)`` for the numbers and
``run(out, quiet, config)`` for the results directory.

* ``dabney2020`` -- Dabney et al., Nature 2020: dopamine reversal points, decoding, and the
  variable-probability task.
* ``lyle2019`` -- Lyle, Castro, Bellemare, AAAI 2019: tabular CTD's mean follows TD's.
* ``rainbow2021`` -- Obando-Ceron and Castro, ICML 2021: DQN vs C51 and QR-DQN on classic
  control (a ``td_jax.deep`` suite with the paper's claims).
"""

__all__ = ["dabney2020", "lyle2019", "rainbow2021"]
