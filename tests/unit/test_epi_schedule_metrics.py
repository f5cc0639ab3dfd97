import pytest
import torch

from components.epi_finetune.cpi import group_tasks, jaccard, update_core
from components.epi_finetune.methods import isolation_config, trains_in_stages
from components.epi_finetune.metrics import backward_transfer, conflict_score, forgetting
from components.epi_finetune.params import FinetuneParams, IsolationConfig
from components.epi_finetune.schedule import build_plan, split_steps, stages_from_records

RECORDS = [
    {"task": t, "stage": s}
    for t, s, n in [("a", 0, 10), ("b", 1, 30), ("c", 1, 5)]
    for _ in range(n)
]


def test_mixed_plan_covers_all_tasks_in_one_stage():
    plan = build_plan(RECORDS, [("a", "b", "c")], steps=20, samples_per_step=4, seed=0)
    assert len(plan.order) == 80 and set(plan.stage_of_step) == {0}
    assert {RECORDS[i]["task"] for i in plan.order} == {"a", "b", "c"}
    assert plan.stage_ends() == [20]


def test_sequential_plan_trains_stages_in_order():
    stages = stages_from_records(RECORDS)
    assert stages == [("a",), ("b", "c")]
    plan = build_plan(RECORDS, stages, steps=11, samples_per_step=2, seed=0)
    assert plan.stage_of_step == [0] * 5 + [1] * 6 and plan.stage_ends() == [5, 11]
    assert all(RECORDS[i]["task"] == "a" for i in plan.order[:10])
    assert all(RECORDS[i]["task"] != "a" for i in plan.order[10:])


def test_proportional_stage_steps_follow_the_record_counts():
    assert split_steps(11, [1, 3], "even") == [5, 6]
    assert split_steps(120, [32, 218], "proportional") == [16, 104]
    assert split_steps(10, [1, 1000, 1], "proportional") == [1, 8, 1]  # one step at least
    assert sum(split_steps(97, [5, 7, 11, 13], "proportional")) == 97
    with pytest.raises(ValueError, match="3 stages"):
        split_steps(2, [1, 1, 1], "proportional")
    # 10 records in stage 0, 35 in stage 1: 1 + 10 * 10/45 = 3.2 and 1 + 10 * 35/45 = 8.8 steps
    plan = build_plan(RECORDS, stages_from_records(RECORDS), 12, 2, 0, stage_steps="proportional")
    assert plan.stage_ends() == [3, 12]


def test_task_pure_batches_for_per_task_ema():
    plan = build_plan(
        RECORDS, [("a", "b", "c")], steps=30, samples_per_step=4, seed=1, task_pure_batches=True
    )
    for step, task in enumerate(plan.task_of_step):
        assert {RECORDS[i]["task"] for i in plan.order[4 * step : 4 * step + 4]} == {task}


def test_plan_is_seeded():
    a = build_plan(RECORDS, [("a", "b", "c")], 10, 4, seed=3)
    assert a == build_plan(RECORDS, [("a", "b", "c")], 10, 4, seed=3)
    assert a != build_plan(RECORDS, [("a", "b", "c")], 10, 4, seed=4)


def test_forgetting_and_bwt():
    history = [{"a": 0.2, "b": 0.0}, {"a": 0.9, "b": 0.1}, {"a": 0.5, "b": 0.8}]
    assert forgetting(history) == pytest.approx({"a": 0.4, "b": 0.0})
    after_stage = [{"a": 0.9, "b": 0.1}, {"a": 0.3, "b": 0.8}]
    assert backward_transfer(after_stage, [("a",), ("b",)]) == pytest.approx(-0.6)


def test_conflict_score():
    g = [torch.tensor([1.0, -2.0, 3.0])]
    assert conflict_score(g, [torch.tensor([1.0, -1.0, 1.0])]) == 0.0
    assert conflict_score(g, [-g[0]]) == 1.0
    assert conflict_score(g, [torch.tensor([1.0, 1.0, 1.0])]) == pytest.approx(2 / 6)
    exclude = [torch.tensor([False, True, False])]
    assert conflict_score(g, [torch.tensor([1.0, 1.0, 1.0])], exclude) == 0.0


def test_cpi_cores_and_grouping():
    before = [torch.zeros(10)]
    after = [torch.tensor([0.0, 5, 0, 0, 0, 0, 0, 0, 0, 4])]
    (core,) = update_core(before, after, ratio=0.2, limits=IsolationConfig())
    assert core.nonzero().flatten().tolist() == [1, 9]
    m = lambda *idx: [torch.isin(torch.arange(10), torch.tensor(idx))]  # noqa: E731
    cores = {"a": m(0, 1), "b": m(1, 2), "c": m(7, 8)}
    assert jaccard(cores["a"], cores["b"]) == pytest.approx(1 / 3)
    groups = group_tasks(cores, tau=0.1, seed=0)
    assert sorted(groups) == [("a", "b"), ("c",)]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("epi", {"mask_interval": 25}),
        ("epi_static", {"mask_interval": None}),
        ("random_mask", {"mask_source": "random"}),
        ("inverse_epi", {"mask_source": "inverse"}),
        ("cpi", {"mask_source": "external"}),
        ("full", {"protect_mode": "none"}),
    ],
)
def test_method_registry(method, expected):
    config = isolation_config(FinetuneParams(method=method))
    assert {k: getattr(config, k) for k in expected} == expected
    assert isolation_config(FinetuneParams(method="full", track_drift=False)) is None
    assert trains_in_stages(FinetuneParams(method="multistage"))
    assert not trains_in_stages(FinetuneParams(method="epi"))
