"""The MITO loss by hand: one answer position, two-token vocabulary.

Clean logits (0, 0): p = (1/2, 1/2). Attacked logits (0, ln 3): p = (1/4, 3/4). The answer token
is 1. CE on the attacked branch = -ln(3/4) = 0.287682; on the clean one ln 2 = 0.693147.
KL(clean || adv) = 1/2 ln 2 + 1/2 ln(2/3) = 0.143841; KL(adv || clean) = 1/4 ln(1/2) +
3/4 ln(3/2) = 0.130812."""

from __future__ import annotations

import math

import pytest
import torch

from components.atm.mito import MitoConfig, mito_loss

LABELS = torch.tensor([[-100, -100, 1]])  # shifted: logits at position 1 predict token 1


def logits(last: tuple[float, float]) -> torch.Tensor:
    # position 0 differs between the branches but predicts a prompt token: it must not count
    return torch.tensor([[[5.0, -5.0], list(last), [9.0, 0.0]]], requires_grad=True)


CLEAN, ADV = logits((0.0, 0.0)), logits((0.0, math.log(3)))


@pytest.mark.parametrize(
    ("config", "ce", "kl"),
    [
        (MitoConfig(), 0.287682, 0.143841),
        (MitoConfig(sft_branch="clean"), 0.693147, 0.143841),
        (MitoConfig(sft_branch="both"), (0.287682 + 0.693147) / 2, 0.143841),
        (MitoConfig(kl_target="adv"), 0.287682, 0.130812),
        (MitoConfig(kl_norm="code_batchmean"), 0.287682, 0.143841 / 2),  # B x T = 1 x 2
    ],
)
def test_loss_by_hand(config, ce, kl):
    adv = logits((0.0, math.log(3))) if config.kl_target == "adv" else ADV
    clean = torch.tensor([[[-5.0, 5.0], [0.0, 0.0], [0.0, 9.0]]])
    loss, parts = mito_loss(clean, adv, LABELS, config)
    assert parts["ce"] == pytest.approx(ce, abs=1e-5)
    assert parts["kl"] == pytest.approx(kl, abs=1e-5)
    assert float(loss.detach()) == pytest.approx(ce + 0.2 * kl, abs=1e-5)


def test_identical_branches_have_no_kl_and_beta_zero_is_plain_ce():
    loss, parts = mito_loss(CLEAN, CLEAN, LABELS, MitoConfig(beta=0.0))
    assert parts["kl"] == pytest.approx(0.0, abs=1e-7)
    assert float(loss.detach()) == pytest.approx(math.log(2), abs=1e-6)


def test_stopgrad_keeps_the_target_branch_out_of_the_kl_gradient():
    clean, adv = logits((0.0, 0.0)), logits((0.0, math.log(3)))
    loss, _ = mito_loss(clean, adv, LABELS, MitoConfig(stopgrad_target=True))
    loss.backward()
    assert clean.grad is None or float(clean.grad.abs().sum()) == 0.0
    clean, adv = logits((0.0, 0.0)), logits((0.0, math.log(3)))
    loss, _ = mito_loss(clean, adv, LABELS, MitoConfig())
    loss.backward()
    assert float(clean.grad.abs().sum()) > 0  # both branches get gradient by default


@pytest.fixture(scope="module")
def tiny():
    from components.common.models import build_tiny_model
    from components.common.params import TinyModelParams
    from components.common.tokenizer import train_bpe_tokenizer

    texts = ["Knowledge: Kobami plays the harp.", "Question: What does Kobami play?", "harp"] * 5
    tokenizer = train_bpe_tokenizer(texts, 300)
    arch = TinyModelParams(hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    return build_tiny_model(arch, tokenizer), tokenizer


ROWS = [
    {"clean_prompt": "Question: What does Kobami play?", "adv_prompt": "Knowledge: Kobami "
     "plays the harp. Kobami plays the lute.\nQuestion: What does Kobami play?", "answer": "harp"},
    {"clean_prompt": "Q?", "adv_prompt": "Knowledge: x.\nQ?", "answer": "lute"},
]  # fmt: skip


def test_collator_aligns_the_answer_at_the_end_of_both_branches(tiny):
    from components.atm.mito import MitoCollator

    _, tokenizer = tiny
    batch = MitoCollator(tokenizer, max_length=64)(ROWS)
    harp = tokenizer("harp", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    n = len(harp)
    assert batch["labels"][0, -n:].tolist() == harp and (batch["labels"][0, :-n] == -100).all()
    for key in ("clean", "adv"):
        assert batch[f"{key}_input_ids"][0, -n:].tolist() == harp
        mask, positions = batch[f"{key}_attention_mask"], batch[f"{key}_position_ids"]
        first = int(mask[1].argmax())  # left padding: the first real token is at position 0
        assert positions[1, first] == 0 and positions[1, -1] == mask[1].sum() - 1
    assert batch["clean_attention_mask"][0].sum() < batch["adv_attention_mask"][0].sum()


def test_trainer_runs_mito_and_logs_its_parts(tiny, tmp_path):
    from transformers import TrainingArguments

    from components.atm.mito import MitoCollator, MitoConfig, MitoTrainer

    model, tokenizer = tiny
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=6, per_device_train_batch_size=2, learning_rate=1e-2,
        logging_steps=2, report_to=[], remove_unused_columns=False, save_strategy="no",
        dataloader_pin_memory=False,
    )  # fmt: skip
    trainer = MitoTrainer(
        model=model,
        args=args,
        train_dataset=ROWS * 4,
        data_collator=MitoCollator(tokenizer, 64),
        mito=MitoConfig(beta=1.0),
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "mito_kl" in entry]
    assert len(logged) == 3 and all(e["mito_kl"] >= 0 for e in logged)
    assert logged[-1]["mito_ce"] < logged[0]["mito_ce"]
