"""rlhb_train: behaviour-conditioned SFT of the generator, then RLHB's adversarial RL against the
discriminator (with bootstrapping), and the arms of `rlhb.arms` from the same SFT policy.

    python -m components.rlhb train --data data/rlhb --out models/rlhb

Arms: `sft` (the warm-up itself) and `rlhb` always; `no_bootstrap` (rho = 0), `no_conditioning`
(its own SFT and RL without the behaviour text in the prompt; D still reads the target behaviour),
`rlhbc` and `rlhf` (a fixed reward, prompts always conditioned on b*) when listed. Logs are split
90/10: the held-out tenth only measures D's accuracy (real against behaviour-shuffled).

Outputs in `out_dir`: one `save_pretrained` folder per arm, generators.json (each arm's
conditioning and the b* text) and history.json (every RL iteration of every arm: reward, return,
KL, D's accuracy and its mean output on generations, and, from the simulator, the hidden utility
of the b*-conditioned rollouts, logged only)."""

from __future__ import annotations

import logging
from pathlib import Path

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import atomic_path, write_json
from components.common.params import ModelParams, Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.rlhb.params import RlhbParams, RlhbStep

# torch is imported by the functions that train (arms.py): `--help` and a params error load no
# ML library
log = logging.getLogger(__name__)


def curves(histories: dict[str, list[dict]], report_dir: Path) -> list[Path]:
    from components.common.plots import line_plot

    paths = []
    for key, ylabel in (
        ("reward", "mean clipped reward"),
        ("d_accuracy", "D accuracy, held-out real vs shuffled"),
        ("d_prob_generated", "D's mean output on generations"),
        ("true_score_b_star", "hidden utility under b* (monitor)"),
    ):
        series = {
            arm: ([r["iteration"] for r in h if key in r], [r[key] for r in h if key in r])
            for arm, h in histories.items()
            if any(key in r for r in h)
        }
        if series:
            paths.append(
                line_plot(
                    series,
                    report_dir / f"{key}.png",
                    title=f"rlhb: {key}",
                    xlabel="RL iteration",
                    ylabel=ylabel,
                )
            )
    return paths


def run(
    params: RlhbParams,
    profile: Profile,
    model_params: ModelParams,
    data_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    import mlflow

    from components.rlhb import arms

    seed_everything(params.seed)
    with step_run("rlhb_train", profile, params):
        setup = arms.prepare(params, profile, model_params, data_dir, report_dir)
        generators, histories = {"sft": setup.sft_model}, {}
        conditioned = {"sft": True}
        for arm in ("rlhb", *params.arms):
            generators[arm], histories[arm], conditioned[arm] = arms.train_arm(setup, arm)
        info = {
            "b_star": setup.b_star,
            "bins": len(next(iter(setup.binning.values()))) - 1,
            "arms": {name: {"conditioning": c} for name, c in conditioned.items()},
        }
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            for name, model in generators.items():
                model = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
                model.save_pretrained(tmp / name)
                setup.tokenizer.save_pretrained(tmp / name)
            write_json(tmp / "generators.json", info)
            write_json(tmp / "history.json", histories)
        for png in curves(histories, report_dir):
            mlflow.log_artifact(str(png), artifact_path="plots")
        metrics = dict(setup.metrics)
        for arm, history in histories.items():
            metrics |= {f"{arm}.final_{k}": v for k, v in history[-1].items() if k != "iteration"}
        mlflow.log_metrics(metrics)
        log.info(
            "rlhb_train: %s", {k: round(v, 3) for k, v in metrics.items() if "final_reward" in k}
        )
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.rlhb train", __doc__, RlhbStep)
    path_arguments(parser, "inputs", data=("data/rlhb", "rlhb_data's output"))
    path_arguments(
        parser,
        "outputs",
        out=("models/rlhb", "one generator folder per arm, generators.json, history.json"),
        reports=("reports/rlhb/train", "the loss and RL curves"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "rlhb_train",
        args,
        RlhbStep,
        lambda p: run(p.rlhb, p.profile, p.model, args.data, args.out, args.reports),
    )
