"""The studies behind docs/results: comparisons, benchmarks and real-model lanes, one package per
method. They drive the steps' `run()` functions; nothing under components/ imports them."""
