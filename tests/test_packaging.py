"""Packaging guards: what an installed (non-editable) blobstore would miss."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def declared_packages() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return set(cfg["options"]["packages"].split())


def test_every_package_directory_is_declared_in_setup_cfg():
    found = set()
    for source, name in (("blobstore", "blobstore"), ("api", "blobstore_api")):
        for init in (ROOT / source).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / source).parts
            found.add(".".join((name, *rel)))
    missing = found - declared_packages()
    assert not missing, f"add these to [options] packages in setup.cfg: {missing}"
