"""Segmentation study: the leave-one-domain-out ablation ladder behind docs/results/seg.md."""
