"""KnowTuning end to end on tiny settings: the KFP pipeline pipelines/knowtuning.py under
kfp.local.SubprocessRunner (each task calls the same run() as its DVC stage: data, the pretrain and
finetune steps under KnowTuning's sections, augment, compare with TRL's DPO, evaluate), the
registered model answering from the registry, and the user's records through the data step."""

import json

import mlflow
import pandas as pd
import pytest

from components.common.io import ProjectError, read_jsonl
from components.knowtuning.data_step import run as data_run
from components.knowtuning.params import KnowTuningDataParams
from tests.kfp_local import run_locally

pytestmark = pytest.mark.integration

KNOWTUNING_TINY = [
    "knowtuning_data.entities=9",
    "knowtuning_data.test_entities=3",
    "knowtuning_data.eval_entities=2",
    "knowtuning_data.documents=2",
    "knowtuning_data.tokenizer_vocab_size=300",
    "model.tiny={hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, "
    "num_attention_heads: 2, max_position_embeddings: 128}",
    "knowtuning_base.max_steps=2",
    "knowtuning_base.batch_size=8",
    "knowtuning_sft.max_steps=2",
    "knowtuning_sft.batch_size=4",
    "knowtuning_sft.eval_every=2",
    "knowtuning.kc.dpo.max_steps=2",
    "knowtuning.kc.dpo.batch_size=4",
    "knowtuning.evaluate.max_new_tokens=8",
]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    from pipelines.knowtuning import build_pipeline

    root = tmp_path_factory.mktemp("knowtuning")
    with run_locally(build_pipeline, KNOWTUNING_TINY, root) as (outputs, dirs, uri):
        yield outputs, dirs, uri


def test_kfp_pipeline_runs_every_stage(pipeline_run):
    outputs, dirs, _ = pipeline_run
    assert set(outputs) == {
        "knowtuning-data-op",
        "pretrain-op",
        "finetune-op",
        "knowtuning-augment-op",
        "finetune-op-2",
        "knowtuning-compare-op",
        "knowtuning-evaluate-op",
    }
    assert outputs["knowtuning-data-op"]["test_records"] == 3
    # 6 training answers of 5 facts: ceil(0.5 * 5) = 3 fine-grained pairs each, originals kept
    assert outputs["knowtuning-augment-op"]["augmented_records"] == 18
    assert outputs["knowtuning-augment-op"]["train_records"] == 24
    for aspect in ("completeness", "factuality", "logicality"):
        assert outputs["knowtuning-compare-op"][f"pairs.{aspect}"] == 6
    (pairs_file,) = dirs["knowtuning-compare-op"].rglob("pairs.jsonl")
    pairs = read_jsonl(pairs_file)
    assert all(p["chosen"] != p["rejected"] for p in pairs)
    evaluation = outputs["knowtuning-evaluate-op"]
    for name in ("sft", "ka", "kt"):
        assert 0 <= evaluation[f"test.{name}.completeness"] <= 1
        assert 0 <= evaluation[f"test_unseen.{name}.error_rate"] <= 1
    assert evaluation["promoted"] == 1.0


def test_registered_model_answers_from_the_registry(pipeline_run):
    _, _, uri = pipeline_run
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/knowtuning-model@champion")
    answers = model.predict(pd.DataFrame({"prompt": ["Tell me about Kobami."]}))
    assert len(answers) == 1


def test_user_records_with_and_without_listed_facts(tmp_path, mlflow_uri):
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    record = {"prompt": "What is tea?", "response": "Tea is a drink. It grows on bushes."}
    train.write_text(json.dumps(record) + "\n" + json.dumps({**record, "id": "b"}) + "\n")
    listed = {**record, "meta": {"facts": ["Tea is a drink.", "It grows on bushes."]}}
    test.write_text(json.dumps(listed) + "\n")
    params = KnowTuningDataParams(train_file=str(train), test_file=str(test), eval_entities=1)
    metrics = data_run(params, "hf", tmp_path / "out", tmp_path / "reports")
    assert metrics["train_records"] == 2 and metrics["test_records"] == 1
    (first, _) = read_jsonl(tmp_path / "out/train.jsonl")
    assert first["meta"]["facts"] == ["Tea is a drink.", "It grows on bushes."]

    test.write_text(json.dumps({**record, "meta": {"facts": "Tea is a drink."}}) + "\n")
    with pytest.raises(ProjectError, match=r"test.jsonl:1 \[meta.facts\]"):
        data_run(params, "hf", tmp_path / "out2", tmp_path / "reports2")
    assert not (tmp_path / "out2").exists()
