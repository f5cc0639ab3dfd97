"""CT volumes: the synthetic multi-site benchmark (MSD layout) or the user's MSD task folders,
every volume checked before segmentation trains on it."""
