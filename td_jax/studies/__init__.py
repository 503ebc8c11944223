"""The studies layer: the suites that sit above the engine. The comparison suites are files,
``benchmarks/<name>.toml`` (``suite_files`` reads and checks them, ``suite_schema`` holds
their keys); the papers with code of their own are in ``td_jax.reproductions``, the deep
agents' suites in ``td_jax.deep.suites``. ``td_jax.catalog``, above them all, names every
suite.

Layers (STYLE 20): core (rules, rewards, envs, runner, control, approx) <- engine
(``td_jax.engine``: suite types, the driver, tuning, the unit store; ``engine.scoring``)
<- studies (this package, reproductions, deep, throughput) <- CLI (``td_jax.cli``,
``td_jax.catalog``). An import never points up a layer, and no two folders import each
other (tests/test_layers.py).
"""
