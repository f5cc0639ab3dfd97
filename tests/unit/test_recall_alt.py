"""The opt-in A-B/A-C task `recall_alt` (issue 17): same keys as recall, other values, and the
default data untouched."""

from components.data_prep import world
from components.data_prep.params import DataPrepParams
from components.data_prep.step import synthetic_splits


def test_conflicting_values_hand_computed():
    # random.Random("recall_alt:0").randint(100, 998) draws 547, then 801
    assert world.conflicting_values({"abcd": "123", "efgh": "456"}, seed=0) == {
        "abcd": "547",
        "efgh": "801",
    }
    # a draw equal to the recall value is replaced by 999, which randint(100, 998) never draws
    assert world.conflicting_values({"abcd": "547"}, seed=0) == {"abcd": "999"}


def test_recall_alt_example_shares_the_format():
    example = world.recall_alt_example("abcd", "547")
    assert (example.task, example.prompt, example.response) == (
        "recall_alt",
        "recall alt: abcd",
        "547",
    )
    assert world.recall_example("abcd", "123").prompt == "recall: abcd"


def test_recall_alt_conflicts_with_recall_on_the_same_keys():
    params = DataPrepParams(
        tasks=("recall", "recall_alt"),
        train_per_task={"recall": 20, "recall_alt": 20},
        task_stage={"recall": 0, "recall_alt": 1},
        n_recall_keys=30,
        eval_per_task=10,
    )
    train, evaluation, _ = synthetic_splits(params)

    def table(records, task):
        return {r["meta"]["key"]: r["response"] for r in records if r["task"] == task}

    recall, alt = table(train, "recall"), table(train, "recall_alt")
    assert len(recall) == len(alt) == 20 and recall.keys() == alt.keys()
    assert all(recall[k] != alt[k] for k in recall)
    # both are evaluated on the same trained keys, each with its own value
    assert table(evaluation, "recall").keys() == table(evaluation, "recall_alt").keys()
    assert all(alt[k] == v for k, v in table(evaluation, "recall_alt").items())
    assert {r["stage"] for r in train if r["task"] == "recall_alt"} == {1}


def test_default_data_has_no_recall_alt_and_is_unchanged_by_it():
    default = synthetic_splits(DataPrepParams())
    assert not any(r["task"] == "recall_alt" for r in default[0] + default[1])
    with_alt = DataPrepParams(
        tasks=("reverse", "add", "recall", "fact_qa", "recall_alt"),
        train_per_task={
            "reverse": 600,
            "add": 600,
            "recall": 150,
            "fact_qa": 400,
            "recall_alt": 150,
        },
    )
    train, _, corpus = synthetic_splits(with_alt)
    # the world and the other tasks' examples do not move (only the record shuffle differs)
    assert corpus == default[2]
    same = {(r["prompt"], r["response"]) for r in train if r["task"] != "recall_alt"}
    assert same == {(r["prompt"], r["response"]) for r in default[0]}
