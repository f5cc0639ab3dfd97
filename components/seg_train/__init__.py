"""Dual-task pancreas lesion segmentation (MONAI): segmentation + signed-distance regression,
reciprocal mask-from-SDF Dice, random-convolution views with consistency, and contrastive
features, trained and evaluated leave-one-domain-out (docs/methods/seg.md)."""
