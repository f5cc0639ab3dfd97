"""The EPI study: every fine-tuning method on the tiny profile over seeds (run.py) and the page
it writes, docs/results/epi.md (report.py)."""
