"""Throughput of the dual-task segmentation model vs the plain model of the same backbone, measured
side by side in one run (interleaved repeats, median), in voxels per second.

    python -m bench.seg_throughput [--threads 2] [--repeats 5]   # bench/results/seg_throughput.json

Training step: the plain model does Dice + BCE on one crop (and, as the fair reference per voxel,
on a batch of two copies of it); the dual-task model does what
seg_train does per crop: SDF target (SciPy EDT), two RandConv views, the three heads, every loss
term, backward and the optimizer step. Its input is two views of the crop, so "per crop" and
"per voxel processed" ratios differ by that factor of two; both are reported.
Inference: sliding_window_inference over a volume, no TTA; the extra heads are unused there."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from components.seg_train.losses import DualTaskLoss
from components.seg_train.network import DualTaskSegResNet
from components.seg_train.params import SegLossParams, SegNetworkParams
from components.seg_train.randconv import two_views
from components.seg_train.sdf import signed_distance

PLAIN_LOSS = SegLossParams(sdf=0, reciprocal=0, views=False, consistency=0, contrastive=0)


def crop(shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """An image in [0, 1] and a lesion ball of radius a quarter of the smallest side."""
    grid = np.indices(shape) - (np.array(shape) / 2)[:, None, None, None]
    mask = (grid**2).sum(0) <= (min(shape) / 4) ** 2
    image = np.clip(0.5 + 0.2 * mask + np.random.default_rng(0).normal(0, 0.1, shape), 0, 1)
    as_tensor = lambda a: torch.from_numpy(a.astype(np.float32))[None, None]  # noqa: E731
    return as_tensor(image), as_tensor(mask)


def train_step(
    dual: bool, network: SegNetworkParams, shape: tuple[int, int, int], batch: int = 1
) -> Callable:
    """One optimizer step on one crop: plain (the crop `batch` times) or dual (two views)."""
    loss_params = SegLossParams() if dual else PLAIN_LOSS
    model = DualTaskSegResNet(network, sdf_head=dual, projection=dual).train()
    criterion = DualTaskLoss(loss_params, network.embed_stride)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    image, label = crop(shape)

    def step() -> int:
        x, y, sdf = image.repeat(batch, 1, 1, 1, 1), label.repeat(batch, 1, 1, 1, 1), None
        if dual:
            sdf = torch.from_numpy(signed_distance(label[0, 0].numpy() > 0.5))[None, None]
            x, y, sdf = two_views(image), label.repeat(2, 1, 1, 1, 1), sdf.repeat(2, 1, 1, 1, 1)
        total, _ = criterion(model.forward_train(x), y, sdf)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return x.numel()

    return step


def infer_step(dual: bool, network: SegNetworkParams, volume: tuple, roi: tuple) -> Callable:
    model = DualTaskSegResNet(network, sdf_head=dual, projection=dual).eval()
    image = torch.rand(1, 1, *volume)

    @torch.no_grad()
    def step() -> int:
        sliding_window_inference(image, roi, 4, model, overlap=0.5, mode="gaussian")
        return image.numel()

    return step


def measure(steps: dict[str, Callable], repeats: int, iterations: int) -> dict[str, float]:
    """Median voxels/s per named step; repeats interleave the steps so load drifts hit both."""
    for step in steps.values():
        step()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started, voxels = time.perf_counter(), 0
            for _ in range(iterations):
                voxels += step()
            rates[name].append(voxels / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seg_throughput")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--crop", type=int, nargs=3, default=[48, 32, 16])
    parser.add_argument("--volume", type=int, nargs=3, default=[96, 96, 48])
    parser.add_argument("--roi", type=int, nargs=3, default=[64, 64, 32])
    parser.add_argument("--init-filters", type=int, default=8)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results/seg_throughput.json"
    )
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    network = SegNetworkParams(init_filters=args.init_filters)
    crop_shape, volume, roi = tuple(args.crop), tuple(args.volume), tuple(args.roi)
    train = measure(
        {
            "plain": train_step(False, network, crop_shape),
            "plain_batch2": train_step(False, network, crop_shape, batch=2),
            "dual": train_step(True, network, crop_shape),
        },
        args.repeats,
        args.iterations,
    )
    infer = measure(
        {name: infer_step(name == "dual", network, volume, roi) for name in ("plain", "dual")},
        args.repeats,
        1,
    )
    crop_voxels = int(np.prod(crop_shape))
    result = {
        "threads": args.threads,
        "crop": list(crop_shape),
        "volume": list(volume),
        "train_voxels_per_s": train,
        "train_crops_per_s": {
            "plain": train["plain"] / crop_voxels,
            "dual": train["dual"] / (2 * crop_voxels),
        },
        # time of one training step on the same crop, dual / plain (two views: ≈ 2× the compute)
        "train_overhead_per_crop": train["plain"] / (train["dual"] / 2),
        # per voxel the network processes (views counted), against the plain model at the same
        # batch of two: the cost of the heads, RandConv, the SDF target and the extra losses.
        # (On CPU a batch-1 Conv3d step is slower per voxel than a batch-2 one, so the plain
        # batch-1 step is not the fair reference for it.)
        "train_overhead_per_voxel": train["plain_batch2"] / train["dual"],
        "infer_voxels_per_s": infer,
        "infer_overhead": infer["plain"] / infer["dual"],
    }
    print(f"threads {args.threads}, crop {crop_shape}, volume {volume}, roi {roi}")
    print("| | plain | dual-task | overhead (dual time / plain time) |")
    print("|---|---|---|---|")
    print(
        f"| training, voxels/s, batch of 2 (dual: two views) | {train['plain_batch2']:,.0f} "
        f"| {train['dual']:,.0f} | {result['train_overhead_per_voxel']:.2f}× per voxel |"
    )
    print(
        f"| training, one crop per step (plain: batch 1) | {train['plain']:,.0f} "
        f"| {train['dual']:,.0f} | {result['train_overhead_per_crop']:.2f}× per crop |"
    )
    print(
        f"| sliding-window inference, voxels/s | {infer['plain']:,.0f} | {infer['dual']:,.0f} "
        f"| {result['infer_overhead']:.2f}× |"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
