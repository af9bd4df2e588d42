"""mnist-sweep: a grid of DVC experiments as Ray tasks (command.py), each trial a `dvc exp run`
in a clone of its own (trial.py)."""
