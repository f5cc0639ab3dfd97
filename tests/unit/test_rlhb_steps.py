"""RLHB's stages on a small world (their contract: outputs, metrics, the registry), bootstrapping
into the real pool, and the user's logs: a bad line stops rlhb_data naming its file, line and
field, with nothing written."""

from __future__ import annotations

import json
import random

import pytest
import torch

from components.common.io import ProjectError, read_json, read_jsonl
from components.common.params import ModelParams
from components.common.tokenizer import train_word_tokenizer
from components.rlhb import data_step, evaluate_step, train_step
from components.rlhb.adversarial import DiscriminatorReward, Triplet
from components.rlhb.params import RlhbDataParams, RlhbParams, ScorerParams
from components.rlhb.scorers import build_scorer

SMALL_SCORER = ScorerParams(hidden_size=16, warmup_steps=3, batch_size=8)


def small_params(**update) -> RlhbParams:
    return RlhbParams(
        sft_steps=4, sft_batch_size=8, iterations=2, prompts_per_iteration=2, rollouts=2,
        max_new_tokens=6, eval_samples=1, scorer=SMALL_SCORER, **update,
    )  # fmt: skip


def test_data_train_evaluate(tmp_path, mlflow_uri):
    data, models = tmp_path / "data", tmp_path / "models"
    metrics = data_step.run(RlhbDataParams(logs=300), "tiny", data, tmp_path / "r/data")
    assert metrics["logs"] == 300 and metrics["preference_pairs"] > 0
    assert sorted(p.name for p in data.iterdir()) == [
        "binning.json",
        "eval_queries.jsonl",
        "logs.jsonl",
        "preferences.jsonl",
        "world.json",
    ]
    record = read_jsonl(data / "logs.jsonl")[0]
    assert record["behaviour_text"].startswith("[User behavior] views: ")
    params = small_params(arms=("rlhbc", "rlhf", "no_bootstrap", "no_conditioning"))
    trained = train_step.run(params, "tiny", ModelParams(), data, models, tmp_path / "r/train")
    info = read_json(models / "generators.json")
    assert set(info["arms"]) == {"sft", "rlhb", "rlhbc", "rlhf", "no_bootstrap", "no_conditioning"}
    assert not info["arms"]["no_conditioning"]["conditioning"]
    assert info["b_star"] == "[User behavior] views: 5/5; clicks: 5/5; likes: 5/5; dislikes: 1/5"
    history = read_json(models / "history.json")
    assert [len(h) for h in history.values()] == [2] * 5
    assert history["no_bootstrap"][-1]["bootstrapped"] == 0
    assert history["rlhb"][-1]["bootstrapped"] == 2 * round(0.1 * 4)
    assert "rlhb.final_d_accuracy" in trained
    evaluation = evaluate_step.run(params, "tiny", data, models, tmp_path / "r/ev")
    assert evaluation["registered_version"] == 1 and evaluation["promoted"] == 1
    for arm in info["arms"]:
        assert -0.27 <= evaluation[f"{arm}.score"] <= 0.19
    assert {f"rlhb.like_level_{k}" for k in range(1, 6)} <= set(evaluation)
    for png in ("score.png", "causes.png", "like_levels.png"):
        assert (tmp_path / "r/ev" / png).is_file(), png


def test_bootstrapped_generations_join_the_real_pool():
    texts = ["q a b", "q c d", "x y z", "b1", "b2"]
    tokenizer = train_word_tokenizer(texts)
    params = RlhbParams(bootstrap_ratio=0.5, scorer=SMALL_SCORER)
    pool = [Triplet("q", "a b", "b1"), Triplet("q", "c d", "b2")] * 4
    reward = DiscriminatorReward(
        build_scorer(tokenizer, SMALL_SCORER, 1), tokenizer, pool, pool[:2], params,
        random.Random(0),
    )  # fmt: skip
    generated = [Triplet("q", f"{w}", "b1") for w in ("x", "y", "z", "a")]
    reward.update(generated, torch.tensor([0.3, 2.0, -1.0, 1.0]))
    assert reward.real[len(pool) :] == [generated[1], generated[3]]
    assert reward.bootstrapped == 2


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"query": "q", "response": "r", "behaviour": {"views": 1, "clicks": 0, "likes": 0}},
         "behaviour.dislikes"),
        ({"query": "q", "response": 3, "behaviour": {}}, "response"),
        ({"query": "q", "response": "r", "behaviour": [1]}, "behaviour"),
        ({"query": "q", "response": "r", "behaviour": {}, "extra": 1}, "extra"),
    ],
)  # fmt: skip
def test_a_bad_log_line_is_named_and_nothing_is_written(tmp_path, mlflow_uri, line, field):
    good = {
        "query": "q",
        "response": "r",
        "behaviour": dict(views=3, clicks=1, likes=1, dislikes=0),
    }
    logs = tmp_path / "logs.jsonl"
    logs.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ProjectError) as error:
        data_step.run(RlhbDataParams(logs_file=str(logs)), "tiny", tmp_path / "out", tmp_path / "r")
    assert error.value.field == field and error.value.line == 2 and "logs.jsonl" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_a_negative_count_fails_validation_naming_line_and_metric(tmp_path, mlflow_uri):
    rows = [
        {"query": "q", "response": "r", "behaviour": dict(views=3, clicks=1, likes=1, dislikes=0)},
        {"query": "q", "response": "s", "behaviour": dict(views=3, clicks=1, likes=-1, dislikes=0)},
    ]
    logs = tmp_path / "logs.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ProjectError) as error:
        data_step.run(RlhbDataParams(logs_file=str(logs)), "tiny", tmp_path / "out", tmp_path / "r")
    assert error.value.field == "likes" and error.value.line == 2
    assert not (tmp_path / "out").exists()


def test_user_logs_train_with_the_judge_as_evaluation(tmp_path, mlflow_uri):
    from components.rlhb import simulator

    logs, _ = simulator.simulate_logs(RlhbDataParams(logs=120))
    path = tmp_path / "logs.jsonl"
    path.write_text(
        "".join(
            json.dumps({k: r[k] for k in ("id", "query", "response", "behaviour")}) + "\n"
            for r in logs
        )
    )
    data = tmp_path / "data"
    metrics = data_step.run(RlhbDataParams(logs_file=str(path)), "tiny", data, tmp_path / "r")
    assert "logged_true_score" not in metrics and not (data / "world.json").exists()
    params = small_params()
    train_step.run(params, "tiny", ModelParams(), data, tmp_path / "m", tmp_path / "r/t")
    evaluation = evaluate_step.run(params, "tiny", data, tmp_path / "m", tmp_path / "r/e")
    assert "rlhb.topic_share" not in evaluation and "rlhb.score" in evaluation


def test_a_d_step_sees_half_generated_half_shuffled_fakes_against_as_many_reals():
    tokenizer = train_word_tokenizer(["q a b c d x y z w b1 b2"])
    params = RlhbParams(bootstrap_ratio=0.0, scorer=SMALL_SCORER)
    pool = [Triplet("q", "a b", "b1"), Triplet("q", "c d", "b2")] * 4
    reward = DiscriminatorReward(
        build_scorer(tokenizer, SMALL_SCORER, 1), tokenizer, pool, pool[:2], params,
        random.Random(0),
    )  # fmt: skip
    seen = []
    reward.step = lambda real, fake: seen.append((list(real), list(fake))) or 0.0
    generated = [Triplet("q", w, "b1") for w in ("x", "y", "z", "w")]
    reward.update(generated, torch.zeros(4))
    ((real, fake),) = seen
    assert len(real) == 4 and all(t in pool for t in real)
    assert sum(t in generated for t in fake) == 2
    shuffled_fakes = [t for t in fake if t not in generated]
    assert len(shuffled_fakes) == 2 and all(t not in pool for t in shuffled_fakes)


def test_the_word_tokenizer_and_a_framed_prompt_template():
    from components.common.serving import prompt_template

    tokenizer = train_word_tokenizer(["[User behavior] likes: 5/5", "Query: chess"])
    ids = tokenizer("Query: chess go", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["Query:", "chess", "<|unk|>"]
    assert tokenizer.decode(ids[:2]) == "Query: chess"
    frame = "[User behavior] likes: 5/5\nQuery: {prompt}"
    assert prompt_template(tokenizer, frame) == "[User behavior] likes: 5/5\nQuery: {prompt}\n"
