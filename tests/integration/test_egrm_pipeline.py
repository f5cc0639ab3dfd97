"""E-GRM end to end on tiny settings: the KFP pipeline pipelines/reward.py under
kfp.local.SubprocessRunner (each task calls the same run() as its DVC stage), the scorer's and the
gated model's registered MLflow pyfuncs loading back and answering, and the GX suite rejecting
malformed records."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from components.common.validation import DataValidationError, validate_records
from components.grm_scorer import reasoning
from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

# the smallest settings that still run every E-GRM stage for real
EGRM_TINY = [
    "grm_data.train_questions=80",
    "grm_data.scorer_questions=12",
    "grm_data.eval_questions=12",
    "grm_data.judge_fraction=0.25",
    "grm.policy.tiny={hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, "
    "num_attention_heads: 2, max_position_embeddings: 128}",
    "grm.policy.base.max_steps=3",
    "grm.policy.base.batch_size=8",
    "grm.policy.sft.max_steps=2",
    "grm.policy.sft.batch_size=8",
    "grm.gating.max_new_tokens_direct=4",
    "grm.gating.max_new_tokens_cot=12",
    "grm.scorer.char={hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, "
    "intermediate_size: 32}",
    "grm.scorer.hidden=8",
    "grm.scorer.epochs=1",
]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    from kfp import local

    from pipelines.reward import build_pipeline

    root = tmp_path_factory.mktemp("egrm")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)  # checkpoints land here
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "runs"))
    build_pipeline(load_project_params(REPO_ROOT / "params.yaml", EGRM_TINY))()
    outputs = {}
    for step_dir in next((root / "runs").iterdir()).iterdir():
        executor = json.loads((step_dir / "executor_output.json").read_text())
        outputs[step_dir.name] = executor["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    yield outputs, uri, root
    mp.undo()


def test_kfp_pipeline_runs_every_stage(pipeline_run):
    outputs, _, _ = pipeline_run
    assert set(outputs) == {
        "grm-data-op",
        "grm-policy-op",
        "grm-scorer-op",
        "grm-grpo-op",
        "grm-evaluate-op",
    }
    assert outputs["grm-grpo-op"]["grpo.steps"] == 0  # params.yaml: the SFT policy passes through
    assert outputs["grm-data-op"]["eval_questions"] == 12
    assert 0 <= outputs["grm-policy-op"]["sft.cot_share"] <= 1
    evaluation = outputs["grm-evaluate-op"]
    for route in ("always_direct", "cot_vote", "cot_scorer", "gated_vote", "egrm"):
        assert 0 <= evaluation[f"{route}.accuracy"] <= 1
        assert evaluation[f"{route}.tokens_per_item"] > 0
        assert evaluation[f"{route}.gflops_per_item"] > 0
    # always-CoT pays K paths; E-GRM pays M probes plus K paths only where it triggers
    assert evaluation["cot_vote.trigger_rate"] == 1.0
    assert (
        evaluation["sweep.egrm.tau1.tokens_per_item"]
        >= evaluation["sweep.egrm.tau0.4.tokens_per_item"]
    )
    # the live gated run generates CoT only below tau: exactly the paths the replay charged for
    assert evaluation["live.egrm.trigger_rate"] == evaluation["egrm.trigger_rate"]
    assert evaluation["live.egrm.tokens_per_item"] == pytest.approx(
        evaluation["egrm.tokens_per_item"]
    )
    assert evaluation["live.egrm.wall_ms_per_item"] > 0
    assert evaluation["live.egrm.promoted"] == 1.0


def test_registered_scorer_loads_back_and_scores(pipeline_run):
    _, uri, _ = pipeline_run
    client = MlflowClient(uri)
    challenger = client.get_model_version_by_alias("grm-scorer", "challenger")
    champion = client.get_model_version_by_alias("grm-scorer", "champion")
    assert str(challenger.version) == str(champion.version) == "1"
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/grm-scorer@champion")
    frame = pd.DataFrame(
        {"question": ["3+4+5=", "3+4+5="], "path": ["3+4=7;7+5=12;A:12", "3+4=8;8+5=13;A:13"]}
    )
    scores = model.predict(frame)
    assert len(scores) == 2 and all(0.0 <= float(s) <= 1.0 for s in scores)


def test_registered_egrm_model_answers_a_question(pipeline_run):
    _, uri, _ = pipeline_run
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/grm-egrm@champion")
    answers = model.predict(pd.DataFrame({"question": ["3+4+5=", "1+2="]}))
    assert list(answers.columns) == ["answer", "route", "consensus", "reward", "tokens"]
    assert len(answers) == 2 and set(answers["route"]) <= {"direct", "cot"}
    assert all(0.0 <= c <= 1.0 for c in answers["consensus"])
    # M = 5 probes of at least one token each; the cot route adds K paths
    assert all(t >= 5 for t in answers["tokens"])


def test_gx_suite_rejects_a_malformed_response(tmp_path):
    problems = reasoning.make_problems(4, 2, 3, 9, __import__("random").Random(0), set())
    records = reasoning.records_for(problems, "t", "\nLet's think step by step.")
    records[3]["response"] = "3+4=7;A:seven"
    numbered = [{**r, "line": n} for n, r in enumerate(records, start=1)]
    with pytest.raises(DataValidationError) as error:
        validate_records(numbered, reasoning.reasoning_expectations(128, 256), source="bad.jsonl")
    assert error.value.line == 4 and error.value.field == "response"


def test_compiled_reward_pipeline(tmp_path):
    import yaml
    from kfp import compiler

    from pipelines.reward import build_pipeline

    target = tmp_path / "reward.yaml"
    compiler.Compiler().compile(
        build_pipeline(load_project_params(REPO_ROOT / "params.yaml")), package_path=str(target)
    )
    compiled = next(yaml.safe_load_all(target.read_text()))  # the pipeline spec
    executors = compiled["deploymentSpec"]["executors"]
    assert len(executors) == 5
    for executor in executors.values():
        image = executor["container"]["image"]
        assert ":" in image and not image.endswith(":latest")
    tasks = compiled["root"]["dag"]["tasks"]
    for name in ("grm-policy-op", "grm-scorer-op", "grm-grpo-op", "grm-evaluate-op"):
        assert not tasks[name]["cachingOptions"].get("enableCache", False), name
    inputs = compiled["root"]["inputDefinitions"]["parameters"]
    assert inputs["grm"]["defaultValue"]["gating"]["tau"] == 0.8
