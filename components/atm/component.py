"""KFP lightweight wrappers of ATM's own stages; each calls its DVC stage's `run()`. The base model
and both warm-ups are the pretrain and finetune components, given ATM's sections."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def atm_data_op(
    profile: str,
    params: dict,
    data: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Build the people world (or load the user's corpus and questions), validate, write."""
    from pathlib import Path

    from components.atm.data_step import run
    from components.atm.params import AtmDataParams
    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section

    section = validate_section(AtmDataParams, params, "atm_data")
    log_step_metrics(metrics, run(section, profile, Path(data.path), Path(reports.path)))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def atm_index_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    index: Output[Dataset],
    metrics: Output[Metrics],
):
    """Embed the corpus with MiniLM once: the dense retriever's cache."""
    from pathlib import Path

    from components.atm.index_step import run
    from components.atm.params import RetrieveParams
    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section

    section = validate_section(RetrieveParams, params, "atm_retrieve")
    log_step_metrics(metrics, run(section, profile, Path(data.path), Path(index.path)))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def atm_retrieve_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    index: Input[Dataset],
    retrieved: Output[Dataset],
    generator_warmup: Output[Dataset],
    attacker_warmup: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Top-k lists (dense and BM25), recall@k, and both warm-up SFT sets as their own datasets
    (the finetune component reads train.jsonl and eval.jsonl at a dataset's root)."""
    import shutil
    from pathlib import Path

    from components.atm.params import RetrieveParams
    from components.atm.retrieve_step import run
    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section

    section = validate_section(RetrieveParams, params, "atm_retrieve")
    out = Path(retrieved.path)
    values = run(section, profile, Path(data.path), Path(index.path), out, Path(reports.path))
    shutil.copytree(out / "warmup", generator_warmup.path)
    shutil.copytree(out / "attacker", attacker_warmup.path)
    log_step_metrics(metrics, values)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def atm_rounds_op(
    profile: str,
    params: dict,
    retrieved: Input[Dataset],
    generator: Input[Model],
    attacker: Input[Model],
    adversarial: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """The adversarial rounds: attacker DPO on the generator's NLL, then generator MITO."""
    from pathlib import Path

    from components.atm.params import AtmParams
    from components.atm.rounds_step import run
    from components.common.kfp_outputs import log_step_metrics, model_input_dir, model_output_dir
    from components.common.params import validate_section

    values = run(
        validate_section(AtmParams, params, "atm"),
        profile,
        Path(retrieved.path),
        model_input_dir(generator, workspace),
        model_input_dir(attacker, workspace),
        model_output_dir(adversarial, workspace),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def atm_evaluate_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    retrieved: Input[Dataset],
    sft: Input[Model],
    adversarial: Input[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """EM of G_0 and the ATM generator on clean and attacked test lists; register ATM's."""
    from pathlib import Path

    from components.atm.evaluate_step import run
    from components.atm.params import AtmParams
    from components.common.kfp_outputs import log_step_metrics, model_input_dir
    from components.common.params import validate_section

    trained = model_input_dir(adversarial, workspace)
    values = run(
        validate_section(AtmParams, params, "atm"),
        profile,
        Path(data.path),
        Path(retrieved.path),
        trained / "attacker",
        {"sft": model_input_dir(sft, workspace), "atm": trained / "generator"},
        Path(reports.path),
    )
    log_step_metrics(metrics, values)
