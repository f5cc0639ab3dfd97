"""Reading Medical Segmentation Decathlon task folders (`imagesTr/`, `labelsTr/`, `dataset.json`;
the synthetic sites and the real Task07_Pancreas alike) and the domain → folder map of a CT data
directory (`domains.json`). The CT data step writes these; segmentation reads them."""

from __future__ import annotations

import os
from pathlib import Path

from components.common.io import ProjectError, read_json


def domain_cases(root: str | os.PathLike) -> list[dict[str, str]]:
    """The labelled cases of one MSD task folder: [{"id", "image", "label"}], in listed order."""
    root = Path(root)
    manifest = root / "dataset.json"
    dataset = read_json(manifest)
    training = dataset.get("training") if isinstance(dataset, dict) else None
    if not isinstance(training, list) or not training:
        raise ProjectError("expected a non-empty `training` list", file=manifest, field="training")
    cases = []
    for index, entry in enumerate(training):
        if not isinstance(entry, dict) or not {"image", "label"} <= set(entry):
            raise ProjectError(
                "each entry needs `image` and `label`", file=manifest, field=f"training.{index}"
            )
        image, label = (root / entry[key] for key in ("image", "label"))
        for path in (image, label):
            if not path.is_file():
                raise ProjectError("listed in dataset.json but missing", file=path)
        cases.append(
            {
                "id": Path(entry["image"]).name.split(".")[0],
                "image": str(image),
                "label": str(label),
            }
        )
    return cases


def read_domains(data_dir: str | os.PathLike) -> dict[str, Path]:
    """The domain → task-folder map of a CT data directory (`domains.json`); relative folders
    are relative to `data_dir` (synthetic sites), absolute ones point at the user's data."""
    data_dir = Path(data_dir)
    manifest = data_dir / "domains.json"
    domains = read_json(manifest)
    if not isinstance(domains, dict) or not domains:
        raise ProjectError("expected a mapping of domain name to folder", file=manifest)
    return {name: data_dir / folder for name, folder in domains.items()}
