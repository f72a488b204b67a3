"""Where the fonts, the logo, the shipped scenarios and the playlist live: inside the package when twin is
installed from a wheel (``twin/data/``, copied there at build time by ``setup.py``), else in the checkout
(``assets/`` and ``scenarios/`` beside ``twin/``). Everything that needs them asks here, so both work.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
BUNDLED = PACKAGE / "data"  # in a wheel: assets/ and scenarios/ copied in by setup.py's build_py
CHECKOUT = PACKAGE.parent  # in the repository: main.py, assets/, scenarios/, twin/


def _data_root() -> Path:
    if (BUNDLED / "assets" / "fonts").is_dir():
        return BUNDLED
    return CHECKOUT


DATA = _data_root()
ASSETS = DATA / "assets"
FONTS = ASSETS / "fonts"
SCENARIOS = DATA / "scenarios"
DEFAULT_SCENARIO = SCENARIOS / "lingang.toml"
DEFAULT_PLAYLIST = SCENARIOS / "playlist.toml"
HELIOS_EARTH = SCENARIOS / "helios-earth.toml"


def shipped_scenarios() -> list[str]:
    """Names of the shipped sites (``lingang``, ``small-lab``, ...), the playlist left out."""
    return sorted(p.stem for p in SCENARIOS.glob("*.toml") if not p.stem.startswith("playlist"))


def find_scenario(given: str | Path) -> Path:
    """The path as given if something is there; otherwise a shipped scenario of that name (``lingang`` or
    ``lingang.toml``), so ``twin validate lingang`` works from any folder. A name that matches nothing is
    returned as given, and loading it says "file not found"."""
    path = Path(given)
    if path.exists() or path.parent != Path("."):
        return path
    for candidate in (SCENARIOS / path.name, SCENARIOS / f"{path.name}.toml"):
        if candidate.is_file():
            return candidate
    return path


def version() -> str:
    """The installed package's version (from its metadata), or the checkout's."""
    try:
        return metadata.version("twin")
    except metadata.PackageNotFoundError:
        return "0+checkout"
