"""E-GRM: consensus-gated chain-of-thought over parallel generations, with a discriminative scorer
trained by the hybrid regression-ranking loss (docs/methods/egrm.md)."""
