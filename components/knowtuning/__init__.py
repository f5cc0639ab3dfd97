"""KnowTuning: knowledge-aware fine-tuning (fine-grained knowledge augmentation, then coarse-grained
knowledge comparison with DPO) and its evaluation of completeness, factuality and logicality."""
