"""make install runs `uv pip install --no-deps -r requirements.lock`: the lock is the closure."""

import re
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"
VENV_TOOLING = {"pip"}  # every venv brings its own (its setuptools is too old: locked)


def test_the_lock_pins_every_dependency_of_every_locked_package():
    pins = dict(
        line.split("==", 1)
        for line in LOCK.read_text().splitlines()
        if line and not line.startswith("#")
    )
    locked = {canonicalize_name(name) for name in pins} | VENV_TOOLING
    missing = set()
    for name in pins:
        for spec in distribution(name).requires or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue  # an extra's dependency, or another platform's
            if canonicalize_name(requirement.name) not in locked:
                missing.add(f"{name} needs {requirement}")
    assert not missing, sorted(missing)
    assert all(re.fullmatch(r"[\w.+-]+", version) for version in pins.values())
