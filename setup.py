"""Build step that pyproject.toml cannot express: copy the top-level assets/ and scenarios/ into the
package (twin/data/) of a wheel, so an installed twin finds its fonts, logo, shipped scenarios and
playlist (see twin/resources.py). The checkout keeps them at the top, where main.py and `make run` use
them; an editable install reads them there too. Everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("assets", "scenarios")


class BuildWithData(build_py):
    """build_py, then the data folders copied into build/lib/twin/data/."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout's folders
            return
        target = Path(self.build_lib) / "twin" / "data"
        for name in BUNDLED:
            source = ROOT / name
            if not source.is_dir():
                raise SystemExit(f"setup.py: {source} is missing; build from the repository or its sdist")
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithData})
