"""``td-jax throughput``: learner-updates per second of td_jax against numpy and a
per-learner loop, on this machine (``make throughput``; results/throughput.md).

``benchmark.run_throughput`` runs the benchmark; ``accelerator.run_accelerator`` times td_jax
alone on a GPU or TPU. The workload is data (``workload``, ``user_workload``); the baselines
are ``numpy_baseline`` / ``numpy_rules`` and ``loop_baseline``; ``worker`` runs one
measurement in a process of its own; ``machine`` and ``roofline`` measure the machine's
peaks and XLA's cost per update; ``targets`` and ``report`` judge and write the results.
Nothing here is imported by ``import td_jax``.
"""
