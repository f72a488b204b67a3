"""Installable: the wheel built from the repository carries the fonts, the logo, the shipped scenarios and
the playlist, and its `twin` command works from an empty folder of a fresh virtual environment.

The sources are copied to a temporary folder first, so the build leaves nothing in the working tree. The
fresh environment gets the wheel with --no-deps and finds numpy, pygame and networkx through a .pth file
pointing at this interpreter's site-packages (so nothing is downloaded again); the command itself runs
from an empty folder with nothing of the checkout on its path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(300)

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "twin", "assets", "scenarios")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the `twin` command of a fresh venv that has it installed)."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data"))
        else:
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src)], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (base / "dist").glob("twin-*.whl")
    env = base / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "twin-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return wheel, env / "bin" / "twin"


def _run(twin: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    return subprocess.run([str(twin), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def test_the_wheel_carries_the_data_and_the_command(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "twin/data/assets/fonts/Inter-Regular.otf",
        "twin/data/assets/fonts/OFL.txt",
        "twin/data/assets/logo.png",
        "twin/data/scenarios/lingang.toml",
        "twin/data/scenarios/playlist.toml",
        "twin/render/app.py",
    ):
        assert name in names, name
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "twin = twin.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_twin_runs_from_an_empty_folder(installed: tuple[Path, Path], tmp_path: Path) -> None:
    _, twin = installed
    empty = tmp_path / "empty"
    empty.mkdir()
    version = _run(twin, "--version", cwd=empty)
    assert version.returncode == 0 and version.stdout.startswith("twin 0."), version.stderr
    checked = _run(twin, "validate", "lingang", cwd=empty)
    assert checked.returncode == 0, checked.stderr
    assert "site-packages" in checked.stdout and "12,000" in checked.stdout, "the shipped scenario, from the package"
    check = _run(twin, "exhibit", "--check", "--log", str(tmp_path / "logs" / "exhibit.log"), cwd=empty)
    assert check.returncode == 0 and "all 9 checks passed" in check.stdout, check.stdout + check.stderr
    assert list(empty.iterdir()) == []


def test_the_view_draws_with_the_packaged_fonts(installed: tuple[Path, Path], tmp_path: Path) -> None:
    _, twin = installed
    python = twin.parent / "python"
    probe = "import twin.render.text as t, twin.resources as r; print(t.ASSETS == r.ASSETS)"
    same = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert same.stdout.strip() == "True", "the view's fonts come from the one place assets are found"
    shot = _run(twin, "shot", "small-lab", "--size", "320x240", "--out", "s.png", cwd=tmp_path)
    assert shot.returncode == 0, shot.stderr
    assert (tmp_path / "s.png").stat().st_size > 1000
