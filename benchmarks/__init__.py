"""Benchmarks of td_jax: throughput against numpy and per-learner loop baselines."""
