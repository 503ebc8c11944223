"""``python -m td_jax`` runs the command line."""

from td_jax.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports this module
    main()
