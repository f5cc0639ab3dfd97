from bench.demo_sweep import meets_targets


def test_a_candidate_meets_the_summary_targets_it_recorded():
    # targets (pipelines/summary.py): exact match >= 0.6; learned share 1 - unlearned >= 0.5
    assert meets_targets({"evaluate.accuracy_mean": 0.6, "ilp_diagnosis.unlearned_rate": 0.4})
    assert not meets_targets({"evaluate.accuracy_mean": 0.59})
    assert not meets_targets({"ilp_diagnosis.unlearned_rate": 0.6})
    assert not meets_targets({"seg_evaluate.dice_val": None})
    assert meets_targets({"finetune.final_loss": 9.0})  # no target: not judged
