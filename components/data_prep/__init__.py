"""data_prep: the synthetic LLM world (four tasks, or the ILP planted-cause world) or the user's SFT
files, validated, plus the tiny profile's tokenizer."""
