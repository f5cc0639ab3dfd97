"""EPI: supervised fine-tuning with Evolving Parameter Isolation, and its baselines (full,
multistage, CPI-FT, static, random and inverse masks)."""
