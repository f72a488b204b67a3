"""The simulation core never imports pygame: with pygame made unimportable, every core module loads."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

CORE = [p.stem for p in (ROOT / "twin").glob("*.py") if p.stem != "__init__"]


def test_core_modules_import_without_pygame() -> None:
    code = (
        "import sys; sys.modules['pygame'] = None\n"
        "import importlib\n"
        f"for name in {CORE!r}:\n"
        "    importlib.import_module('twin.' + name)\n"
        "import twin\n"
        "assert 'pygame' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print('ok', len(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
