"""Exhibition playlists: which scenarios the show plays, for how long, how the camera moves and what the
captions say. Read from TOML and validated like scenarios (one clear line on any problem).

    [show]
    title = "..."                 # branding on every title card
    subtitle = "..."
    logo = "logo.png"             # in assets/ (or a path relative to the playlist)
    accent = [86, 204, 255]
    idle_resume_s = 60            # a visitor's quiet minute before the show takes over again
    title_card_s = 5
    fade_s = 1.2

    [[scene]]
    scenario = "lingang.toml"     # relative to the playlist
    seconds = 90
    speed = 300
    camera = ["fit", "glide-rack", "follow-biggest", "orbit-back"]

    [[scene.caption]]
    on = "job-start"              # start | time | job-start | checkpoint | congestion | fault
    min_gpus = 512
    text = "A {gpus:,}-GPU {kind} job starts: its gradient traffic now fills the spine"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.names import LAYOUTS
from twin.resources import ASSETS
from twin.scenario import MAX_GPUS, MAX_SEED, Locator, Table, read_toml

MAX_SPEED = 10_000.0  # simulated seconds per second, as the live view's fastest setting
MAX_SCENE_S = 86_400.0  # a scene may last up to a day

CAMERA_MOVES = ("fit", "glide-rack", "follow-biggest", "orbit-back")
TRIGGERS = ("start", "time", "job-start", "checkpoint", "congestion", "fault")
CAPTION_FIELDS = ("id", "kind", "gpus", "params_b", "util", "link", "alert")


@dataclass(frozen=True)
class Caption:
    on: str
    text: str
    at_s: float  # for "time": seconds into the scene
    min_gpus: int  # for job events: only jobs at least this big
    threshold: float  # for "congestion": hottest link utilisation that counts as a spike
    hold_s: float
    times: int  # how often it may show in one scene


@dataclass(frozen=True)
class Scene:
    scenario: Path
    seconds: float
    speed: float
    seed: int | None
    camera: tuple[str, ...]
    captions: tuple[Caption, ...]
    layout: str


@dataclass(frozen=True)
class Show:
    source: str
    title: str
    subtitle: str
    logo: Path | None
    accent: tuple[int, int, int]
    idle_resume_s: float
    title_card_s: float
    fade_s: float
    scenes: tuple[Scene, ...]


def load_playlist(path: str | Path) -> Show:
    """Read and validate a playlist; raises ScenarioError on any problem."""
    data, text = read_toml(path)
    return playlist_from_dict(data, Path(path).parent, str(path), text)


def playlist_from_dict(data: dict[str, Any], base: Path, source: str = "<playlist>", text: str | None = None) -> Show:
    root = Table(data, "", Locator(source, text))
    show = root.table("show", optional=True)
    logo_name = show.str("logo", default="")
    logo = None
    if logo_name:
        for candidate in (base / logo_name, ASSETS / logo_name):
            if candidate.is_file():
                logo = candidate
                break
        else:
            show.fail("logo", f"an image in {base} or {ASSETS}; {logo_name!r} is in neither")
    accent = _color(show, "accent")
    result = Show(
        source=source,
        title=show.str("title", default="twin"),
        subtitle=show.str("subtitle", default="a digital twin of an AI computing center"),
        logo=logo,
        accent=accent,
        idle_resume_s=show.float("idle_resume_s", positive=True, maximum=86_400.0, default=60.0),
        title_card_s=show.float("title_card_s", minimum=0.0, maximum=600.0, default=5.0),
        fade_s=show.float("fade_s", minimum=0.0, maximum=60.0, default=1.2),
        scenes=tuple(_scene(t, base) for t in root.tables("scene", min_count=1, max_count=1000)),
    )
    show.done()
    root.done()
    return result


def show_inputs(show: Show) -> list[Path]:
    """Every file the show reads: the playlist, each scene's scenario and the logo (an output such as the
    log must never be one of them)."""
    files = [Path(show.source), *(scene.scenario for scene in show.scenes)]
    return files + ([show.logo] if show.logo is not None else [])


def _color(t: Table, key: str) -> tuple[int, int, int]:
    value = t.maybe(key) or [86, 204, 255]
    ok = isinstance(value, list) and len(value) == 3
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    if not ok:
        t.fail(key, "an [r, g, b] colour of whole numbers from 0 to 255")
    return (value[0], value[1], value[2])


def _scene(t: Table, base: Path) -> Scene:
    name = t.str("scenario")
    camera = t.maybe("camera") or list(CAMERA_MOVES)
    if isinstance(camera, str):
        camera = [camera]
    if not isinstance(camera, list) or not camera or any(c not in CAMERA_MOVES for c in camera):
        t.fail("camera", f"a list of camera moves from {', '.join(CAMERA_MOVES)}")
    seed = t.int("seed", minimum=0, maximum=MAX_SEED) if t.maybe("seed") is not None else None
    if not name.strip() or "\0" in name:
        t.fail("scenario", f"the file name of a scenario, got {name!r}")
    scene = Scene(
        scenario=(base / name),
        seconds=t.float("seconds", positive=True, maximum=MAX_SCENE_S),
        speed=t.float("speed", positive=True, maximum=MAX_SPEED, default=120.0),
        seed=seed,
        camera=tuple(camera),
        captions=tuple(_caption(c) for c in t.tables("caption", max_count=100)),
        layout=t.str("layout", choices=LAYOUTS, default="hall"),
    )
    t.done()
    return scene


def _caption(t: Table) -> Caption:
    on = t.str("on", choices=TRIGGERS)
    text = t.str("text")
    try:
        text.format(**dict.fromkeys(CAPTION_FIELDS, 1))
    except (KeyError, ValueError, IndexError) as err:
        t.fail("text", f"a caption whose {{fields}} are among {', '.join(CAPTION_FIELDS)} ({err})")
    caption = Caption(
        on=on,
        text=text,
        at_s=t.float("at", minimum=0.0, maximum=MAX_SCENE_S, default=0.0),
        min_gpus=t.int("min_gpus", minimum=0, maximum=MAX_GPUS, default=0),
        threshold=t.float("threshold", minimum=0.0, maximum=1.0, default=0.9),
        hold_s=t.float("hold", positive=True, maximum=3600.0, default=8.0),
        times=t.int("times", minimum=1, maximum=10_000, default=1),
    )
    t.done()
    return caption
