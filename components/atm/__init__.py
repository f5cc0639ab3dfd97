"""ATM: adversarial tuning of a retrieval-augmented generator against a learnt attacker."""
