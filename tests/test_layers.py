"""Every module of the package has a place in the layers contract, so import-linter checks its imports."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def layered_modules():
    """The module names the layers contract of pyproject.toml lists."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    layers = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")["layers"]
    return {name for layer in layers for name in re.split(r"[|:]", layer) if name.strip()} - {""}


def package_modules():
    """The modules and subpackages directly inside webapp/ (the client package ships apart)."""
    root = REPO / "webapp"
    names = {path.stem for path in root.glob("*.py") if path.stem != "__init__"}
    names |= {path.parent.name for path in root.glob("*/__init__.py") if path.parent.name != "client"}
    return names


def test_every_module_is_in_a_layer():
    """Is a new module placed in a layer (else import-linter would never look at its imports)?"""
    layered = {name.strip() for name in layered_modules()}
    assert package_modules() - layered == set()
    assert layered - package_modules() == set()
