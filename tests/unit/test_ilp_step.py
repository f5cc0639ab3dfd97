"""The ilp_diagnosis step on a tiny planted world with untrained tiny models: it never reads
`meta`, writes its reports, and stops on bad input with an error naming what is missing."""

import csv
import json
import shutil

import pytest
import torch

from components.common.io import ProjectError, read_jsonl, write_jsonl
from components.common.models import build_tiny_model, load_causal_lm
from components.common.params import TinyModelParams
from components.common.sft import per_record_loss
from components.common.tokenizer import train_bpe_tokenizer
from components.data_prep import planted
from components.ilp_diagnosis.params import IlpParams
from components.ilp_diagnosis.step import run

SMALL = planted.PlantedConfig(
    n_control=8,
    n_missing=4,
    n_conflict=3,
    n_contradiction_pairs=2,
    n_forgetting=8,  # enough colours for distractors: no slow free-form sampling
    n_rare=1,
    n_eval=2,
    known_repeats=1,
    conflict_repeats=2,
)
# sharp option distributions, so that an untrained model leaves records unlearned
PARAMS = IlpParams(temperature=0.05, max_length=48, max_new_tokens=4)


def write_dynamics(path, records, losses_by_step):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "step", "loss"])
        for step, losses in losses_by_step.items():
            writer.writerows([r["id"], step, loss] for r, loss in zip(records, losses, strict=True))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ilp")
    built = planted.build_world(0, SMALL)
    records = [{k: v for k, v in r.items() if k != "line"} for r in built["train"]]
    data = root / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", records)
    write_jsonl(data / "eval.jsonl", records[:2])
    texts = built["corpus"] + [r["prompt"] + r["response"] for r in records]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=320)
    tokenizer.save_pretrained(str(data / "tokenizer"))
    torch.manual_seed(0)
    arch = TinyModelParams(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    for name in ("base", "sft"):
        build_tiny_model(arch, tokenizer).save_pretrained(root / name)
        tokenizer.save_pretrained(str(root / name))
    base, _ = load_causal_lm(root / "base")
    sft, _ = load_causal_lm(root / "sft")
    clean = [{k: v for k, v in r.items() if k != "meta"} for r in records]
    write_dynamics(
        root / "dynamics.csv",
        records,
        {
            0: per_record_loss(base, tokenizer, clean, 48),
            10: per_record_loss(sft, tokenizer, clean, 48),
        },
    )
    return root


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One MLflow store for the module (creating one costs seconds)."""
    with pytest.MonkeyPatch.context() as patch:
        uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


def diagnose(root, data, report, dynamics=None, sft=None):
    dynamics = dynamics or root / "dynamics.csv"
    return run(PARAMS, "tiny", data, root / "base", sft or root / "sft", dynamics, report)


def test_diagnosis_never_reads_meta(world, tmp_path, tracking):
    with_meta = diagnose(world, world / "data", tmp_path / "a")
    stripped = tmp_path / "stripped"
    shutil.copytree(world / "data", stripped)
    records = read_jsonl(stripped / "train.jsonl")
    write_jsonl(stripped / "train.jsonl", [{**r, "meta": {}} for r in records])
    without = diagnose(world, stripped, tmp_path / "b")

    rows_a = read_jsonl(tmp_path / "a/diagnosis.jsonl")
    assert rows_a == read_jsonl(tmp_path / "b/diagnosis.jsonl")
    assert any(r["analysed"] for r in rows_a)
    analysed = next(r for r in rows_a if r["analysed"])
    assert {"label", "labels", "evidence", "signals"} <= set(analysed)
    # only the run with ground truth has the confusion matrix and F1
    assert "macro_f1" in with_meta and "macro_f1" not in without
    assert (tmp_path / "a/confusion.png").stat().st_size > 1000
    assert not (tmp_path / "b/confusion.png").exists()
    summary = json.loads((tmp_path / "a/summary.json").read_text())
    assert summary["records"] == len(records) and 0 <= summary["unlearned_rate"] <= 1


def test_empty_sft_set_is_an_error(world, tmp_path):
    empty = tmp_path / "empty"
    shutil.copytree(world / "data", empty)
    (empty / "train.jsonl").write_text("")
    with pytest.raises(ProjectError, match="empty") as error:
        diagnose(world, empty, tmp_path / "r")
    assert "train.jsonl" in str(error.value)


def test_missing_or_foreign_dynamics_are_errors(world, tmp_path):
    with pytest.raises(ProjectError, match="dynamics") as error:
        diagnose(world, world / "data", tmp_path / "r", dynamics=tmp_path / "no.csv")
    assert "no.csv" in str(error.value)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("id,step,loss\nother,0,1.0\n")
    with pytest.raises(ProjectError, match=r"\[id\]"):
        diagnose(world, world / "data", tmp_path / "r", dynamics=foreign)
    shifted = tmp_path / "shifted.csv"
    rows = (world / "dynamics.csv").read_text().splitlines()
    shifted.write_text("\n".join([rows[0], *(f"{r.rsplit(',', 1)[0]},9.0" for r in rows[1:])]))
    with pytest.raises(ProjectError, match="do not belong together"):
        diagnose(world, world / "data", tmp_path / "r", dynamics=shifted)


def test_mismatched_tokenizer_is_an_error(world, tmp_path):
    other = tmp_path / "other_sft"
    shutil.copytree(world / "sft", other)
    train_bpe_tokenizer(["something else entirely"], vocab_size=280).save_pretrained(str(other))
    with pytest.raises(ProjectError, match="tokenizer") as error:
        diagnose(world, world / "data", tmp_path / "r", sft=other)
    assert "other_sft" in str(error.value)
