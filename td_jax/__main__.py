"""``python -m td_jax`` runs the command line."""

from td_jax.cli import main

main()
