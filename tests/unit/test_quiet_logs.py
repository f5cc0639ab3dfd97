"""No log line a user cannot act on (issue 14): torch's pin_memory and put_ warnings, MONAI's
default-change warning, GX's temporary-folder lines, MLflow's store-creation lines, progress bars
redrawn into a log file."""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings

import pytest
import torch

from components.common.repro import seed_everything


@pytest.fixture
def deterministic():
    """common.repro's deterministic mode (warn only), as every step runs; restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    seed_everything(0)
    yield
    torch.use_deterministic_algorithms(before, warn_only=warn_only)


def user_warnings(action, category: type[Warning] = UserWarning) -> list[str]:
    """The messages of the `category` warnings `action()` raises (none hidden by filters)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [str(w.message) for w in caught if issubclass(w.category, category)]


def test_torch_warns_on_a_bare_put_under_deterministic_mode(deterministic):
    """The warning put_at silences is real (else the next tests would prove nothing)."""
    target, index = torch.zeros(6), torch.tensor([1, 4])
    caught = user_warnings(lambda: target.put_(index, torch.ones(2)))
    assert any("put_" in message for message in caught)


def test_put_at_writes_an_index_set_without_the_put_warning(deterministic):
    from components.epi_finetune.index_sets import put_at

    target = torch.zeros(2, 3)
    assert not user_warnings(lambda: put_at(target, torch.tensor([1, 5]), torch.tensor([7.0, 9.0])))
    assert target.tolist() == [[0.0, 7.0, 0.0], [0.0, 0.0, 9.0]]


def test_put_at_leaves_other_warnings_alone(deterministic):
    from components.epi_finetune.index_sets import put_at

    def put_and_warn():
        put_at(torch.zeros(3), torch.tensor([0]), torch.ones(1))
        warnings.warn("something else", UserWarning, stacklevel=1)

    assert user_warnings(put_and_warn) == ["something else"]


def test_resetting_adam_moments_on_an_index_set_does_not_warn(deterministic):
    from components.epi_finetune.engine import reset_moments

    weight = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.Adam([weight])
    weight.grad = torch.ones(4)
    optimizer.step()

    caught = user_warnings(lambda: reset_moments(optimizer, [weight], [torch.tensor([0, 2])]))

    assert not caught
    assert optimizer.state[weight]["exp_avg"][[0, 2]].tolist() == [0.0, 0.0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU default")
def test_trainer_arguments_pin_no_memory_without_a_gpu(tmp_path):
    from components.common.training import training_arguments

    assert training_arguments(tmp_path).dataloader_pin_memory is False


def test_trainer_progress_bars_only_on_a_terminal(tmp_path, monkeypatch):
    from components.common.training import training_arguments

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file, as under dvc repro or KFP
    assert training_arguments(tmp_path).disable_tqdm is True

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert training_arguments(tmp_path).disable_tqdm is False


def test_a_new_mlflow_store_is_created_without_info_lines(tmp_path, capfd):
    import mlflow

    import components.common.tracking  # noqa: F401  (sets the MLflow store's log level)

    mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()

    assert (tmp_path / "mlflow.db").is_file()
    assert "Creating initial MLflow database tables" not in capfd.readouterr().err


def test_validation_logs_no_temporary_folder(caplog):
    from components.common.validation import sft_expectations, validate_records

    records = [
        {"line": 1, "id": "a", "task": "t", "stage": 0, "prompt": "p", "response": "r", "meta": {}}
    ]
    caplog.set_level(logging.INFO)

    validate_records(records, sft_expectations(["t"], 100, 100), "records.jsonl")

    assert "temporary directory" not in caplog.text


def test_seg_preprocessing_builds_without_monai_future_warnings():
    from components.seg_train.transforms import preprocess

    assert not user_warnings(lambda: preprocess(None, (-100.0, 200.0)), FutureWarning)


def test_hd95_does_not_pass_on_monais_own_deprecation_warning():
    from components.seg_train.metrics import case_metrics

    label = torch.zeros(1, 1, 6, 6, 6)
    label[..., 2:4, 2:4, 2:4] = 1
    prediction = torch.zeros_like(label)
    prediction[..., 2:5, 2:4, 2:4] = 1

    assert not user_warnings(
        lambda: case_metrics(prediction, label, (1.0, 1.0, 1.0)), FutureWarning
    )


@pytest.mark.parametrize(
    ("logger", "message"),
    [
        ("mlflow.pytorch", "Saving pytorch model by Pickle or CloudPickle format requires ..."),
        ("mlflow.pyfunc", "Passing a Python object as `python_model` causes it to be ..."),
        ("mlflow.transformers", "The model card could not be retrieved from the hub due to ..."),
        ("mlflow.transformers", "Unable to find license information for this model. ..."),
    ],
)
def test_mlflow_advice_on_how_we_log_models_is_dropped(logger, message):
    import components.common.tracking  # noqa: F401  (installs the filters)

    # on the logger itself: MLflow's loggers do not propagate to the root (caplog)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger(logger).addHandler(handler)
    try:
        logging.getLogger(logger).warning(message)
        logging.getLogger(logger).warning("a warning that matters")
    finally:
        logging.getLogger(logger).removeHandler(handler)

    assert [r.getMessage() for r in records] == ["a warning that matters"]


def test_the_scorer_is_logged_without_the_input_example_warning(tmp_path, mlflow_uri):
    import mlflow

    from components.grm_scorer.pyfunc import log_scorer

    (tmp_path / "scorer").mkdir()
    (tmp_path / "scorer" / "config.json").write_text("{}")
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("quiet-logs")  # not an experiment id left active by an earlier test
    with mlflow.start_run():
        caught = user_warnings(lambda: log_scorer(tmp_path / "scorer"))

    assert not [m for m in caught if "input example" in m]


def test_library_progress_bars_are_off_in_a_log_file(monkeypatch):
    from transformers.utils import logging as transformers_logging

    from components.common.cli import quiet_progress_bars

    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"):
        monkeypatch.setenv(name, "unset")  # recorded, so that teardown removes what the test sets
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    try:
        quiet_progress_bars()
        assert not transformers_logging.is_progress_bar_enabled()  # imported before: switched off
    finally:
        transformers_logging.enable_progress_bar()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # for those imported after
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
