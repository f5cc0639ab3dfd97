"""Reading Medical Segmentation Decathlon task folders (`imagesTr/`, `labelsTr/`, `dataset.json`;
the synthetic sites and the real Task07_Pancreas alike) and the domain → folder map of a CT data
directory (`domains.json`). The CT data step writes these; segmentation reads them."""

from __future__ import annotations

import os
from pathlib import Path

from components.common.io import ProjectError, first_few, read_json

LESION_LABEL = 2  # MSD Task07_Pancreas: 0 background, 1 pancreas, 2 lesion (cancer)


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
        cases.append(
            {
                "id": Path(entry["image"]).name.split(".")[0],
                "image": str(image),
                "label": str(label),
            }
        )
    _require_listed_files(manifest, [Path(c[key]) for c in cases for key in ("image", "label")])
    return cases


def _require_listed_files(manifest: Path, paths: list[Path]) -> None:
    """Every missing file is named in one error."""
    missing = [path for path in paths if not path.is_file()]
    if len(missing) == 1:
        raise ProjectError("listed in dataset.json but missing", file=missing[0])
    if missing:
        raise ProjectError(
            f"{len(missing)} listed files are missing: {first_few(missing)}", file=manifest
        )


def require_lesions(cases_by_domain: dict[str, list[dict[str, str]]]) -> None:
    """A lesion model needs lesion voxels (label 2) in the labels of every domain it trains on: a
    domain without any (pancreas-only labels) would teach it that lesions do not exist. Reads
    each domain's labels up to its first lesion; every domain without one is named in the error."""
    # nibabel only here: the check stage imports this module and must start fast
    from components.common.nifti import load_nifti

    missing = [
        name
        for name, cases in cases_by_domain.items()
        if not any((load_nifti(case["label"])[0] == LESION_LABEL).any() for case in cases)
    ]
    if missing:
        raise ProjectError(
            f"a lesion model, but no training label of domain(s) {', '.join(missing)} has a "
            f"lesion voxel (value {LESION_LABEL}): set seg_train.target: pancreas, or train "
            "on domains with lesion labels",
            field="seg_train.target",
        )


def read_domains(data_dir: str | os.PathLike) -> dict[str, Path]:
    """The domain → task-folder map of a CT data directory (`domains.json`); relative folders
    are relative to `data_dir` (synthetic sites), absolute ones point at the user's data."""
    data_dir = Path(data_dir)
    manifest = data_dir / "domains.json"
    domains = read_json(manifest)
    if not isinstance(domains, dict) or not domains:
        raise ProjectError("expected a mapping of domain name to folder", file=manifest)
    return {name: data_dir / folder for name, folder in domains.items()}
