"""pretrain: the tiny base LM trained on the world corpus, or the pretrained base materialised."""
