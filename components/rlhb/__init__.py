"""RLHB: aligning a generator directly on logged user behaviour (Jiang et al. 2024)."""
