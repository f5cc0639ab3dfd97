"""ILP: detect the training records SFT failed to learn, attribute them to causes, mitigate."""
