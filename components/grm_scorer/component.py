"""KFP lightweight wrappers of the five E-GRM stages; each calls its DVC stage's `run()`."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def grm_data_op(
    profile: str,
    params: dict,
    data: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Generate the graded arithmetic benchmark (direct, CoT and judge targets), validate it."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.grm_scorer.data_step import run
    from components.grm_scorer.params import GrmDataParams

    section = validate_section(GrmDataParams, params, "grm_data")
    log_step_metrics(metrics, run(section, profile, Path(data.path), Path(reports.path)))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def grm_policy_op(
    profile: str,
    model_params: dict,
    params: dict,
    data: Input[Dataset],
    policy: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """SFT of the GRM policy on direct/CoT targets split by the base model's consensus."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_output_dir
    from components.common.params import ModelParams, validate_section
    from components.grm_scorer.params import GrmParams
    from components.grm_scorer.policy_step import run

    values = run(
        validate_section(GrmParams, params, "grm"),
        validate_section(ModelParams, model_params, "model"),
        profile,
        Path(data.path),
        model_output_dir(policy, workspace),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def grm_scorer_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    policy: Input[Model],
    scorer: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """Train the discriminative scorer on the policy's CoT paths; register it as a challenger."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir
    from components.common.params import validate_section
    from components.grm_scorer.params import GrmParams
    from components.grm_scorer.scorer_step import run

    values = run(
        validate_section(GrmParams, params, "grm"),
        profile,
        Path(data.path),
        model_input_dir(policy, workspace),
        Path(scorer.path),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def grm_grpo_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    policy: Input[Model],
    scorer: Input[Model],
    grpo_policy: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """E-GRM stage 2: GRPO of the SFT policy with the scorer's pairwise reward (steps 0: none)."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir, model_output_dir
    from components.common.params import validate_section
    from components.grm_scorer.grpo_step import run
    from components.grm_scorer.params import GrmParams

    values = run(
        validate_section(GrmParams, params, "grm"),
        profile,
        Path(data.path),
        model_input_dir(policy, workspace),
        Path(scorer.path),
        model_output_dir(grpo_policy, workspace),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def grm_evaluate_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    policy: Input[Model],
    scorer: Input[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """All routes with their costs, the tau frontier, AUROC; promote the scorer if it is better."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir
    from components.common.params import validate_section
    from components.grm_scorer.evaluate_step import run
    from components.grm_scorer.params import GrmParams

    values = run(
        validate_section(GrmParams, params, "grm"),
        profile,
        Path(data.path),
        model_input_dir(policy, workspace),
        Path(scorer.path),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)
