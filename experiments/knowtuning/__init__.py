"""The KnowTuning study: every arm on the entity world over seeds (benchmark.py) and the page it
writes, docs/results/knowtuning.md (report.py)."""
