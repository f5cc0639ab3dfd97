"""ATM's data, index and retrieve steps: the user's files rejected with file, line and field
(nothing written), and the three steps chained on a small world with the real MiniLM and BM25."""

from __future__ import annotations

import pytest

from components.atm import data_step, index_step, retrieve_step
from components.atm.params import AtmDataParams, RetrieveParams
from components.common.io import ProjectError, read_json, read_jsonl, write_jsonl

CORPUS = [{"id": "d1", "title": "A", "text": "Kobami plays the harp."}]


@pytest.mark.parametrize(
    ("question", "field"),
    [
        ({"id": "q2", "question": "Who?", "answers": [], "split": "test"}, "answers"),
        ({"id": "q2", "question": "Who?", "answers": ["x"], "split": "eval"}, "split"),
        (
            {"id": "q2", "question": "Who?", "answers": ["x"], "split": "test", "gold": ["d9"]},
            "gold",
        ),
        ({"id": "q2", "question": " ", "answers": ["x"], "split": "test"}, "question"),
    ],
)
def test_bad_user_question_names_file_line_field_and_writes_nothing(
    tmp_path, mlflow_uri, question, field
):
    write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    good = {"id": "q1", "question": "What does Kobami play?", "answers": ["harp"], "split": "train"}
    write_jsonl(tmp_path / "questions.jsonl", [good, question])
    params = AtmDataParams(
        corpus_file=str(tmp_path / "corpus.jsonl"),
        questions_file=str(tmp_path / "questions.jsonl"),
    )
    with pytest.raises(ProjectError, match=rf"questions.jsonl:2 \[{field}\]"):
        data_step.run(params, "tiny", tmp_path / "out", tmp_path / "reports")
    assert not (tmp_path / "out").exists()


def test_data_index_retrieve_on_a_small_world(tmp_path, mlflow_uri):
    data, index, out = tmp_path / "data", tmp_path / "index", tmp_path / "retrieved"
    data_step.run(AtmDataParams(people=12), "tiny", data, tmp_path / "r")
    params = RetrieveParams(top_k=3, recall_at=(1, 3))
    assert index_step.run(params, "tiny", data, index)["documents"] == 24
    metrics = retrieve_step.run(params, "tiny", data, index, out, tmp_path / "r")
    test = read_jsonl(out / "test.jsonl")
    assert test and all(len(q["ctxs"]) == 3 for q in test)
    for q in test:  # hasanswer is exactly "the text states an answer"
        assert all(c["hasanswer"] == (q["answers"][0] in c["text"]) for c in q["ctxs"])
    for name in ("dense", "bm25"):
        assert 0 <= metrics[f"test.{name}.recall@1"] <= metrics[f"test.{name}.recall@3"] <= 1
    assert read_json(tmp_path / "r/recall.json") == metrics
    assert (tmp_path / "r/recall.png").is_file()
    warmup = read_jsonl(out / "warmup/train.jsonl")
    assert len(warmup) == len(read_jsonl(data / "train.jsonl"))
    assert {r["task"] for r in warmup} <= {"rag_qa", "closed_book"}
    assert len(read_jsonl(out / "attacker/train.jsonl")) == len(warmup)
    assert (data / "tokenizer").is_dir() and (data / "corpus.txt").stat().st_size > 0


def test_one_round_trains_both_agents_and_reports_strength_and_em(tmp_path, mlflow_uri):
    from components.atm import rounds_step
    from components.atm.params import AtmParams
    from components.common.models import build_tiny_model, load_tokenizer
    from components.common.params import TinyModelParams
    from components.common.preference import PreferenceParams

    data, index, out = tmp_path / "data", tmp_path / "index", tmp_path / "retrieved"
    data_step.run(AtmDataParams(people=12, tokenizer_vocab_size=400), "tiny", data, tmp_path / "r")
    index_step.run(RetrieveParams(), "tiny", data, index)
    retrieve_step.run(RetrieveParams(top_k=2), "tiny", data, index, out, tmp_path / "r")
    tokenizer = load_tokenizer(data / "tokenizer")
    arch = TinyModelParams(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           max_position_embeddings=512)  # fmt: skip
    model = build_tiny_model(arch, tokenizer)
    model.save_pretrained(tmp_path / "g0")
    tokenizer.save_pretrained(tmp_path / "g0")
    params = AtmParams.model_validate(
        {
            "rounds": 1,
            "questions_per_round": 4,
            "probe_questions": 3,
            "attacker": {
                "fabrications": 2,
                "max_new_tokens": 8,
                "dpo": PreferenceParams(max_steps=1, batch_size=2, max_length=384, sft_weight=0),
            },
            "mito": {"max_steps": 2, "batch_size": 2, "max_length": 384},
            "log_round_models": False,
        }
    )
    metrics = rounds_step.run(
        params, "tiny", out, tmp_path / "g0", tmp_path / "g0", tmp_path / "atm", tmp_path / "rr"
    )
    assert (tmp_path / "atm/generator/config.json").is_file()
    assert (tmp_path / "atm/attacker/config.json").is_file()
    history = read_json(tmp_path / "rr/rounds.json")
    assert [h["round"] for h in history] == [1.0] and 0 <= metrics["final_em_attacked"] <= 1
    assert metrics["final_strength_before"] > 0 and (tmp_path / "rr/rounds.png").is_file()
    import mlflow

    # each turn's Trainer logs into its own nested run: its arguments never clash with the other's
    turns = mlflow.search_runs(
        search_all_experiments=True, filter_string="attributes.run_name LIKE 'round1-%'"
    )
    assert sorted(turns["tags.mlflow.runName"]) == ["round1-attacker", "round1-generator"]
    assert turns["tags.mlflow.parentRunId"].notna().all()
    assert sorted(turns["params.max_steps"]) == ["1", "2"]  # DPO's 1 step, MITO's 2

    from components.atm import evaluate_step

    models = {"sft": tmp_path / "g0", "atm": tmp_path / "atm/generator"}
    scores = evaluate_step.run(
        params, "tiny", data, out, tmp_path / "atm/attacker", models, tmp_path / "ev"
    )
    conditions = {key.split(".")[1] for key in scores if key.startswith("atm.")}
    assert {"clean", "noise_1", "heldout_2_top", "heldout_3_random", "corroborated_3_top",
            "attacker_top"} <= conditions  # fmt: skip
    assert 0 <= scores["sft.heldout_1_top.adoption"] <= 1
    assert scores["registered_version"] == 1.0 and scores["promoted"] == 1.0
    assert (tmp_path / "ev/em_by_condition.png").is_file()


def test_user_data_gets_counterfactual_conditions_and_the_world_a_popularity_split():
    from components.atm.evaluate_step import conditions, em_by_popularity

    tests = [
        {"id": "q1", "question": "What does Kobami play?", "answers": ["harp"],
         "ctxs": [{"id": "d1", "title": "Kobami", "text": "Kobami plays the harp."}]},
        {"id": "q2", "question": "What does Ruvo play?", "answers": ["lute"],
         "ctxs": [{"id": "d2", "title": "Ruvo", "text": "Ruvo plays the lute."}]},
    ]  # fmt: skip
    corpus = [c for q in tests for c in q["ctxs"]] + [{"id": "d3", "title": "C", "text": "x"}]
    lists = conditions(tests, corpus, {}, seed=0)
    assert {f"counterfactual_{n}_top" for n in (1, 2, 3)} <= set(lists)
    (attacked, fakes), _ = lists["counterfactual_1_top"]
    assert attacked[0]["text"] == "Kobami plays the lute." and fakes[0]["fab_value"] == "lute"
    rows = [
        {"model": "sft", "condition": "clean", "id": "q1", "em": True},
        {"model": "sft", "condition": "clean", "id": "q2", "em": False},
        {"model": "sft", "condition": "clean", "id": "q3", "em": True},
    ]
    split = em_by_popularity(rows, {"q1": True, "q2": False, "q3": False})
    assert split == {"sft.clean.em_popular": 1.0, "sft.clean.em_tail": 0.5}
