"""Packaging beside pyproject.toml (which holds the project's metadata): the packages, and
the suite files of the top-level benchmarks/ folder shipped as the package data of
``td_jax.benchmarks``, where ``td_jax.studies.suite_files`` looks first."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["td_jax*"]), "td_jax.benchmarks"],
    package_dir={"td_jax.benchmarks": "benchmarks"},
    package_data={"td_jax.benchmarks": ["*.toml"]},
)
