"""evaluate: per-task exact match of the fine-tuned model, MLflow registry and champion alias."""
