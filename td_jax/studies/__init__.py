"""The studies layer: every suite by name (``catalog``) and the suite definitions that
sit above the engine (``approx_suites``; the papers in ``td_jax.reproductions``, the deep
agents' suites in ``td_jax.deep.suites``).

Layers (STYLE 20): core (rules, rewards, envs, runner, control, approx) <- engine
(``td_jax.harness``: suites, tuning, scoring, store) <- studies (this package,
reproductions, deep, throughput) <- CLI. An import never points up a layer, and no two
folders import each other (tests/test_layers.py).
"""
