"""The registry contract on a real SQLite MLflow store: each registration moves `challenger`;
`champion` moves only on improvement."""

import mlflow
import pytest
from mlflow import MlflowClient

from components.common.tracking import CHALLENGER, CHAMPION, promote_if_better, register, step_run

pytestmark = pytest.mark.integration


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def log_and_register(name):
    with step_run("test", "tiny") as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=[])
        assert run.data.tags["step"] == "test" and run.data.tags["profile"] == "tiny"
        assert run.data.tags["git_commit"]
    return register(info.model_uri, name)


def test_challenger_moves_and_champion_only_on_improvement(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    first = log_and_register("m")
    assert client.get_model_version_by_alias("m", CHALLENGER).version == first.version
    assert promote_if_better("m", first.version, "acc", 0.5)

    second = log_and_register("m")
    assert client.get_model_version_by_alias("m", CHALLENGER).version == second.version
    assert not promote_if_better("m", second.version, "acc", 0.4)
    assert not promote_if_better("m", second.version, "acc", 0.5)  # a tie keeps the champion
    assert client.get_model_version_by_alias("m", CHAMPION).version == first.version

    third = log_and_register("m")
    assert promote_if_better("m", third.version, "acc", 0.7)
    assert client.get_model_version_by_alias("m", CHAMPION).version == third.version
    loaded = mlflow.pyfunc.load_model("models:/m@champion")
    assert loaded.predict([1, 2]) == [1, 2]


def test_lower_is_better_metric(mlflow_uri):
    first = log_and_register("loss-model")
    assert promote_if_better("loss-model", first.version, "loss", 1.0, greater_is_better=False)
    second = log_and_register("loss-model")
    assert promote_if_better("loss-model", second.version, "loss", 0.5, greater_is_better=False)
