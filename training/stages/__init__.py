"""The training stages. Each is a function of the run's config, its tracker and the declared
results of earlier stages, returning a declared result of its own (training.pipeline wires them)."""
