from components.data_prep.params import DataPrepParams
from components.data_prep.step import synthetic_splits


def test_synthetic_data_is_deterministic():
    assert synthetic_splits(DataPrepParams(seed=3)) == synthetic_splits(DataPrepParams(seed=3))
    assert synthetic_splits(DataPrepParams(seed=3)) != synthetic_splits(DataPrepParams(seed=4))


def test_splits_follow_the_contract():
    params = DataPrepParams()
    train, evaluation, corpus = synthetic_splits(params)
    by_task = {task: [r for r in train if r["task"] == task] for task in params.tasks}
    assert {t: len(rs) for t, rs in by_task.items()} == dict(params.train_per_task)
    assert len({r["id"] for r in train + evaluation}) == len(train) + len(evaluation)
    for record in train + evaluation:
        assert record["stage"] == params.task_stage[record["task"]]
        assert record["prompt"] and record["response"]
    train_prompts = {r["prompt"] for r in train}
    for record in evaluation:
        # memorisation is tested on trained keys; everything else on unseen prompts
        assert (record["prompt"] in train_prompts) == (record["task"] == "recall")


def test_reverse_and_add_answers_are_correct():
    train, _, _ = synthetic_splits(DataPrepParams())
    for record in train:
        body = record["prompt"].split(": ", 1)[1]
        if record["task"] == "reverse":
            assert record["response"] == " ".join(reversed(body.split()))
        if record["task"] == "add":
            a, b = body.split(" + ")
            assert record["response"] == str(int(a) + int(b))


def test_fact_qa_eval_facts_are_in_the_corpus_only():
    train, evaluation, corpus = synthetic_splits(DataPrepParams())
    text = "\n".join(corpus)
    trained = {
        (r["meta"]["entity"], r["meta"]["attribute"]) for r in train if r["task"] == "fact_qa"
    }
    for record in (r for r in evaluation if r["task"] == "fact_qa"):
        fact = (record["meta"]["entity"], record["meta"]["attribute"])
        assert fact not in trained
        assert f"The {fact[1]} of {fact[0]} is {record['response']}." in text
