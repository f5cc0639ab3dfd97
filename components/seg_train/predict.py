"""Segment a user's CT volume and write the mask as NIfTI on the input's grid:

    python -m components.seg_train.predict --model models/seg --image ct.nii.gz --out mask.nii.gz
    python -m components.seg_train.predict --model models:/pancreas-seg@champion ...

`--model` is a folder written by seg_train or an MLflow model URI. `--pancreas` (a pancreas or
MSD label volume on the same grid) restricts inference to the pancreas box plus the training
margin, as in evaluation; without it the whole volume is segmented with sliding windows, which
is outside what the ROI-trained network has seen (the paper's pancreas cascade is not built).
The output is 1 for the target (lesion by default), 0 elsewhere."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np
from monai.data import MetaTensor
from monai.transforms import Invertd

from components.common.cli import HelpFormatter
from components.common.io import ProjectError
from components.common.nifti import load_nifti, save_nifti
from components.seg_train.infer import predict_probability, segment
from components.seg_train.network import DualTaskSegResNet
from components.seg_train.params import SegInferenceParams, SegTrainParams
from components.seg_train.train import load_model
from components.seg_train.transforms import predict_transforms

log = logging.getLogger(__name__)
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def load_any(source: str) -> DualTaskSegResNet:
    """A seg_train output folder, or an MLflow model URI (models:/..., runs:/...)."""
    if Path(source).is_dir():
        return load_model(source)
    if ":/" not in source:
        raise ProjectError("not a model folder or an MLflow model URI", file=source)
    import mlflow  # only this path needs it
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pytorch.load_model(source).eval()
    except MlflowException as error:
        message = str(error).strip().splitlines()[0]
        raise ProjectError(f"cannot load the model: {message}", file=source) from None


def check_output_path(out_path: Path) -> None:
    """nibabel picks the file format by suffix: refuse a non-NIfTI name before any work."""
    if not out_path.name.endswith(NIFTI_SUFFIXES):
        raise ProjectError("must end in .nii or .nii.gz", file=out_path, field="--out")


def check_input(image_path: Path, pancreas_path: Path | None) -> None:
    image, affine, _ = load_nifti(image_path)
    if image.ndim != 3:
        raise ProjectError(f"expected a 3D volume, got shape {image.shape}", file=image_path)
    if not np.isfinite(image).all():
        raise ProjectError(
            "non-finite intensities (NaN or inf)", file=image_path, field="intensity"
        )
    if pancreas_path is not None:
        mask, mask_affine, _ = load_nifti(pancreas_path)
        if mask.shape != image.shape or not np.allclose(mask_affine, affine, atol=1e-3):
            raise ProjectError("not on the image's grid", file=pancreas_path, field="shape")
        if not (mask > 0).any():
            raise ProjectError("empty pancreas mask", file=pancreas_path, field="labels")


def predict_file(
    model: DualTaskSegResNet,
    image_path: str | os.PathLike,
    out_path: str | os.PathLike,
    pancreas_path: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Write the binary mask of `image_path` to `out_path`; returns voxel counts."""
    image_path = Path(image_path)
    pancreas_path = Path(pancreas_path) if pancreas_path else None
    check_input(image_path, pancreas_path)
    inference = SegInferenceParams.model_validate(model.config["inference"])
    preprocessing = model.config["preprocessing"]
    # models saved before the window was a parameter were all trained with its default
    hu_window = preprocessing.get("hu_window", SegTrainParams().hu_window)
    transforms = predict_transforms(
        preprocessing["spacing"],
        hu_window,
        inference.margin,
        pancreas_path is not None,
        model.divisor,
    )
    data = {"image": str(image_path)}
    if pancreas_path is not None:
        data["roi"] = str(pancreas_path)
    data = transforms(data)
    image = data["image"]
    mask = segment(predict_probability(model, image[None].as_tensor(), inference), inference)
    # the prediction takes the image's transform history, so Invertd maps it back to its grid
    data["pred"] = MetaTensor(
        mask[0].float(), meta=image.meta, applied_operations=image.applied_operations
    )
    inverted = Invertd("pred", transform=transforms, orig_keys="image", nearest_interp=True)(data)
    array = (np.asarray(inverted["pred"][0]) > 0.5).astype(np.uint8)
    _, affine, _ = load_nifti(image_path)
    save_nifti(out_path, array, affine)
    return {"voxels": float(array.sum())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.seg_train.predict",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a seg_train output folder (models/seg) or an MLflow model URI "
        "(models:/pancreas-seg@champion, runs:/<run id>/model)",
    )
    parser.add_argument(
        "--image", type=Path, required=True, help="input: the CT volume (NIfTI, in HU)"
    )
    parser.add_argument(
        "--pancreas",
        type=Path,
        default=None,
        help="input: a pancreas (or MSD label) mask on the image's grid; inference is restricted "
        "to its box",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output: the binary mask on the image's grid (.nii or .nii.gz)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        check_output_path(args.out)
        counts = predict_file(load_any(args.model), args.image, args.out, args.pancreas)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log.info("wrote %s (%d voxels)", args.out, counts["voxels"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
