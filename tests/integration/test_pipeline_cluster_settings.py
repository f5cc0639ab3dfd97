"""Cluster settings of the compiled pipelines: the workspace PVC's options and the ordering a
ReadWriteOnce workspace needs, retries and resources, the launcher on the CPU image, the lineage
environment of every task (also under kfp.local) and a description for every parameter."""

import pytest
import yaml
from kfp import compiler, dsl

from components.common.images import CPU_IMAGE, GPU_IMAGE
from pipelines import compile as compile_cli
from pipelines import full, llm
from pipelines.compile import PIPELINES
from pipelines.params import load_project_params
from pipelines.tasks import (
    LINEAGE_ENV,
    PRETRAINED_EVALUATE_MEMORY,
    SPOT_RETRIES,
    lineage_arguments,
    with_lineage_env,
)
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

GPU_TASKS = {"pretrain-op", "finetune-op", "ilp-diagnosis-op", "grm-policy-op", "seg-train-op"}
CPU_TASKS = {"data-prep-op", "evaluate-op", "grm-data-op", "ct-data-op"}


def compiled(pipeline, tmp_path) -> tuple[dict, dict]:
    """(pipeline spec, Kubernetes platform spec)."""
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]


def all_tasks(spec: dict) -> dict[str, dict]:
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    return {name: task for dag in dags for name, task in dag["tasks"].items()}


@pytest.fixture(scope="module")
def params():
    return load_project_params(REPO_ROOT / "params.yaml")


@pytest.fixture(scope="module")
def pretrained():
    return load_project_params(REPO_ROOT / "params.yaml", ["profile=smollm2"])


def test_workspace_size_storage_class_and_access_mode_reach_the_pvc(pretrained, tmp_path):
    pipeline = full.build_pipeline(
        pretrained,
        workspace_size="200Gi",
        workspace_storage_class="nfs-rwx",
        workspace_access_mode="ReadWriteMany",
    )
    _, platform = compiled(pipeline, tmp_path)
    workspace = platform["pipelineConfig"]["workspace"]
    assert workspace["size"] == "200Gi"
    assert workspace["kubernetes"]["pvcSpecPatch"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "nfs-rwx",
    }


def test_read_write_once_orders_the_tasks_that_share_the_workspace(pretrained, tmp_path):
    spec, platform = compiled(
        full.build_pipeline(pretrained, workspace_access_mode="ReadWriteOnce"), tmp_path
    )
    assert platform["pipelineConfig"]["workspace"]["kubernetes"]["pvcSpecPatch"] == {
        "accessModes": ["ReadWriteOnce"]  # no storage class: the cluster's default
    }
    assert "llm" in spec["root"]["dag"]["tasks"]["reward-egrm"]["dependentTasks"]
    assert "ilp-diagnosis-op" in all_tasks(spec)["evaluate-op"]["dependentTasks"]
    # with ReadWriteMany both readers of the fine-tuned model run side by side
    spec, _ = compiled(full.build_pipeline(pretrained), tmp_path)
    assert "ilp-diagnosis-op" not in all_tasks(spec)["evaluate-op"]["dependentTasks"]
    assert "dependentTasks" not in spec["root"]["dag"]["tasks"]["reward-egrm"]


def test_bad_workspace_options_fail_at_compile_time(params):
    with pytest.raises(ValueError, match="needs ReadWriteMany"):
        llm.build_pipeline(params, 2, workspace_access_mode="ReadWriteOnce")
    with pytest.raises(ValueError, match="ReadOnlyMany"):
        llm.build_pipeline(params, workspace_access_mode="ReadOnlyMany")
    with pytest.raises(ValueError, match="invalid"):  # checked even when the profile needs none
        llm.build_pipeline(params, workspace_size="50GB")


def test_compile_fails_on_a_misspelt_params_key(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        compile_cli.main(["--out", str(tmp_path), "--set", "finetune.max_step=3"])
    assert exit_.value.code == 2
    assert "finetune.max_step" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_gpu_tasks_retry_and_cpu_tasks_have_resources_and_a_timeout(pretrained, tmp_path):
    spec, platform = compiled(full.build_pipeline(pretrained), tmp_path)
    tasks = all_tasks(spec)
    executors = spec["deploymentSpec"]["executors"]
    k8s = platform["deploymentSpec"]["executors"]
    for name in GPU_TASKS:
        assert tasks[name]["retryPolicy"]["maxRetryCount"] == SPOT_RETRIES, name
    for name in CPU_TASKS:
        assert "retryPolicy" not in tasks[name], name
        resources = executors[f"exec-{name}"]["container"]["resources"]
        assert {"cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"} <= set(resources), name
        assert int(k8s[f"exec-{name}"]["activeDeadlineSeconds"]) > 0, name
    evaluate = executors["exec-evaluate-op"]["container"]["resources"]
    assert evaluate["resourceMemoryLimit"] == PRETRAINED_EVALUATE_MEMORY


def test_the_trainjob_launcher_keeps_the_cpu_image_and_passes_gpu_settings_on(params, tmp_path):
    spec, platform = compiled(llm.build_pipeline(params, 2), tmp_path)
    launcher = spec["deploymentSpec"]["executors"]["exec-finetune-trainjob-op"]["container"]
    assert launcher["image"] == CPU_IMAGE
    assert "accelerator" in launcher["resources"]  # passed through to the TrainJob's nodes
    config = platform["deploymentSpec"]["executors"]["exec-finetune-trainjob-op"]
    assert config["tolerations"] and config["nodeSelector"] and config["activeDeadlineSeconds"]
    assert "emptyDirMounts" not in config  # the TrainJob sizes its own /dev/shm (shm_size)
    task = spec["root"]["dag"]["tasks"]["finetune-trainjob-op"]
    assert task["retryPolicy"]["maxRetryCount"] == SPOT_RETRIES
    arguments = task["inputs"]["parameters"]
    assert arguments["run_id"]["runtimeValue"]["constant"] == dsl.PIPELINE_JOB_ID_PLACEHOLDER
    assert spec["deploymentSpec"]["executors"]["exec-pretrain-op"]["container"]["image"] == (
        GPU_IMAGE
    )


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_task_exports_the_lineage_of_its_run(params, tmp_path, name):
    spec, _ = compiled(PIPELINES[name](params), tmp_path)
    for executor, config in spec["deploymentSpec"]["executors"].items():
        command = config["container"]["command"]
        assert command[0] == "env", executor
        assert {item.split("=")[0] for item in command[1:4]} == set(LINEAGE_ENV), executor
    for task_name, task in all_tasks(spec).items():
        if "componentRef" in task and "dag" in spec["components"][task["componentRef"]["name"]]:
            continue  # a sub-pipeline of full
        arguments = task["inputs"]["parameters"]
        assert arguments["kfp_run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
        assert arguments["kfp_run_name"]["runtimeValue"]["constant"] == "{{$.pipeline_job_name}}"
        version = arguments["kfp_pipeline_version"]["componentInputParameter"]
        assert version.endswith("pipeline_version"), task_name


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_pipeline_parameter_has_a_description(params, tmp_path, name):
    spec, _ = compiled(PIPELINES[name](params), tmp_path)
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["pipeline_version"]["defaultValue"] == "local"
    for parameter, definition in inputs.items():
        assert definition.get("description"), parameter


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def lineage_probe() -> str:
    import os

    return "|".join(os.environ[name] for name in ("KFP_RUN_NAME", "KFP_PIPELINE_VERSION"))


def test_kfp_local_resolves_the_lineage_environment(tmp_path):
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))

    @dsl.pipeline(name="lineage")
    def lineage(pipeline_version: str = "v-1") -> str:
        return with_lineage_env(lineage_probe)(**lineage_arguments(pipeline_version)).output

    run_name, version = lineage().output.split("|")
    assert run_name.startswith("lineage-") and version == "v-1"
