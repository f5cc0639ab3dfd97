"""ILP studies: the planted-cause benchmark, the SmolLM2 lane and docs/results/ilp.md."""
