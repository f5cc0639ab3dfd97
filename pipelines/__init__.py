"""Kubeflow pipelines of the steps, the whole params.yaml (params.py) and its check (check.py)."""
