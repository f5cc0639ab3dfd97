"""The training loop: one volume per iteration, two RandConv views of it, Adam with a poly
schedule. Short enough to read on one screen (nanoGPT style)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from monai.data import CacheDataset, DataLoader

from components.common.io import ProjectError, read_json
from components.common.msd import domain_cases
from components.common.repro import seed_everything
from components.seg_train.losses import DualTaskLoss
from components.seg_train.network import DualTaskSegResNet
from components.seg_train.params import SegNetworkParams, SegTrainParams
from components.seg_train.randconv import two_views
from components.seg_train.transforms import train_transforms

log = logging.getLogger(__name__)


def split_cases(
    domains: dict[str, Path], names: tuple[str, ...], holdout: int, field: str
) -> tuple[list[dict], list[dict]]:
    """(training cases, held-out cases) of `names`: the last `holdout` cases of each domain are
    held out. Each case is {"id", "domain", "image", "label"}."""
    fit, held = [], []
    for name in names:
        if name not in domains:
            raise ProjectError(f"unknown domain {name!r}; have {sorted(domains)}", field=field)
        cases = [{**case, "domain": name} for case in domain_cases(domains[name])]
        if len(cases) <= holdout:
            raise ProjectError(
                f"domain {name!r} has {len(cases)} cases, not more than holdout_per_domain",
                file=domains[name],
                field="seg_train.holdout_per_domain",
            )
        fit += cases[:-holdout]
        held += cases[-holdout:]
    return fit, held


def build_model(params: SegTrainParams) -> DualTaskSegResNet:
    """Heads follow the loss: the SDF head only if an SDF term is on, the projection only for the
    contrastive term. With every extra term off this is the plain SegResNet."""
    loss = params.loss
    return DualTaskSegResNet(
        params.network,
        sdf_head=loss.sdf > 0 or loss.reciprocal > 0,
        projection=loss.contrastive > 0,
    )


def train(
    params: SegTrainParams, cases: list[dict], on_log: Any = None
) -> tuple[DualTaskSegResNet, list[dict[str, float]]]:
    """Train on `cases` for `params.iterations` volumes; returns the model and the loss history
    (one row per iteration: total and each active term)."""
    seed_everything(params.seed)
    torch.set_num_threads(params.num_threads)
    model = build_model(params)
    transforms = train_transforms(params, model.divisor, with_sdf=params.loss.sdf > 0)
    transforms.set_random_state(seed=params.seed)
    dataset = CacheDataset(cases, transforms, cache_rate=1.0, num_workers=0, progress=False)
    loader = DataLoader(
        dataset,
        batch_size=1,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(params.seed),
    )
    criterion = DualTaskLoss(params.loss, params.network.embed_stride)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    schedule = torch.optim.lr_scheduler.PolynomialLR(
        optimizer, total_iters=params.iterations, power=params.poly_power
    )
    history: list[dict[str, float]] = []
    model.train()
    while len(history) < params.iterations:
        for batch in loader:
            image, target = batch["image"].as_tensor(), batch["label"].as_tensor()
            sdf = batch.get("sdf")
            if params.loss.views:  # both views share the label and the SDF target
                image, target = (
                    two_views(image, params.loss.kernel_sizes),
                    target.repeat(2, 1, 1, 1, 1),
                )
                sdf = sdf.repeat(2, 1, 1, 1, 1) if sdf is not None else None
            total, terms = criterion(model.forward_train(image), target, sdf)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            schedule.step()
            history.append({"step": len(history) + 1, "loss": float(total.detach()), **terms})
            if on_log and len(history) % params.log_every == 0:
                on_log(history[-1])
            if len(history) == params.iterations:
                break
    return model.eval(), history


def save_model(model: DualTaskSegResNet, params: SegTrainParams, out_dir: Path) -> None:
    """state_dict + config.json: enough to rebuild the network and its preprocessing."""
    torch.save(model.state_dict(), out_dir / "model.pt")
    config = {
        **model.config,
        "preprocessing": {
            "spacing": params.spacing,
            "hu_window": params.hu_window,
            "target": params.target,
        },
        "inference": params.inference.model_dump(mode="json"),
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def load_model(model_dir: str | os.PathLike) -> DualTaskSegResNet:
    """The model saved by `save_model`, in eval mode, with its config attached."""
    model_dir = Path(model_dir)
    config = read_json(model_dir / "config.json")
    network = SegNetworkParams.model_validate(config["network"])
    model = DualTaskSegResNet(network, sdf_head=config["sdf_head"], projection=config["projection"])
    state = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.config = config
    return model.eval()
