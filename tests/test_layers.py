"""The direction of imports (ARCHITECTURE.md) holds: import-linter's
contracts in .importlinter, run over the installed packages."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_goes_the_right_way():
    result = lint_imports(ROOT / ".importlinter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wrong_way_import_is_caught(tmp_path):
    """The contracts bite: the library importing the HTTP layer breaks one
    (checked on a copy of the tree, with one import added)."""
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "blobstore", tree / "blobstore")
    shutil.copytree(ROOT / "api", tree / "blobstore_api")
    clock = tree / "blobstore" / "clock.py"
    clock.write_text(clock.read_text() + "\nimport blobstore_api.app  # wrong way\n")
    config = tmp_path / "contracts.ini"
    config.write_text((ROOT / ".importlinter").read_text())
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", str(config)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "The library never imports the HTTP layer BROKEN" in result.stdout
