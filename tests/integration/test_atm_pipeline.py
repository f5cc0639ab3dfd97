"""ATM end to end on tiny settings: the KFP pipeline pipelines/atm.py under
kfp.local.SubprocessRunner (each task calls the same run() as its DVC stage: data, the MiniLM
index, retrieval, the pretrain and finetune steps under ATM's sections, one adversarial round with
TRL's DPO and MITO, the attacked evaluation), then the registered generator answering from the
registry."""

import mlflow
import pandas as pd
import pytest

from tests.kfp_local import run_locally

pytestmark = pytest.mark.integration

ATM_TINY = [
    "atm_data.people=12",
    "atm_data.tokenizer_vocab_size=400",
    "atm_model.tiny={hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, "
    "num_attention_heads: 2, max_position_embeddings: 512}",
    "atm_retrieve.top_k=2",
    "atm_base.max_steps=2",
    "atm_base.batch_size=8",
    "atm_sft.max_steps=2",
    "atm_sft.batch_size=4",
    "atm.rounds=1",
    "atm.questions_per_round=4",
    "atm.probe_questions=3",
    "atm.attacker.fabrications=2",
    "atm.attacker.max_new_tokens=8",
    "atm.attacker.dpo.max_steps=1",
    "atm.attacker.dpo.batch_size=2",
    "atm.mito.max_steps=2",
    "atm.mito.batch_size=2",
    "atm.max_answer_tokens=4",
]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    from pipelines.atm import build_pipeline

    root = tmp_path_factory.mktemp("atm")
    with run_locally(build_pipeline, ATM_TINY, root) as (outputs, dirs, uri):
        yield outputs, uri


def test_kfp_pipeline_runs_every_stage(pipeline_run):
    outputs, _ = pipeline_run
    assert set(outputs) == {
        "atm-data-op",
        "atm-index-op",
        "atm-retrieve-op",
        "pretrain-op",
        "finetune-op",
        "finetune-op-2",
        "atm-rounds-op",
        "atm-evaluate-op",
    }
    assert outputs["atm-index-op"]["documents"] == 24  # a bio and a news document per person
    assert 0 <= outputs["atm-retrieve-op"]["test.dense.recall@1"] <= 1
    assert outputs["atm-rounds-op"]["final_strength_after"] > 0
    evaluation = outputs["atm-evaluate-op"]
    for name in ("sft", "atm"):
        assert 0 <= evaluation[f"{name}.heldout_2_top.em"] <= 1
        assert 0 <= evaluation[f"{name}.attacker_top.adoption"] <= 1
    assert evaluation["promoted"] == 1.0


def test_registered_generator_answers_from_the_registry(pipeline_run):
    _, uri = pipeline_run
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/atm-generator@champion")
    answers = model.predict(pd.DataFrame({"prompt": ["Knowledge: Question: Who?"]}))
    assert len(answers) == 1
