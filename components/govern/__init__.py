"""GOVERN: label-free multi-teacher distillation by a per-sample vote of gradient orientations."""
