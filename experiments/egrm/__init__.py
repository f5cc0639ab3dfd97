"""The E-GRM studies: the tiny-profile comparison over seeds, the real-SmolLM2 gating lane and the
page they write, docs/results/egrm.md."""
