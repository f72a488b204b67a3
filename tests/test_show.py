"""The exhibition show, headless: playlists, scene flow, errors that never stop it, captions timed to
simulated events, visitors, the quit chord, drift, resolutions, and video export."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pygame
import pytest

from conftest import ROOT, site
from helpers import job
from twin.captions import CaptionTrack
from twin.cli import main
from twin.errors import ScenarioError
from twin.playlist import load_playlist, playlist_from_dict
from twin.render import show as show_mod
from twin.render.show import DRIFT_PERIODS_S, DRIFT_PX, INTERMISSION_S, Exhibit, show_logger
from twin.scenario import load_scenario, scenario_from_dict
from twin.simulation import Simulation

SCENARIOS = ROOT / "scenarios"
SMALL = "small-lab.toml"


@pytest.fixture(scope="module", autouse=True)
def display() -> None:
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((640, 360))
    yield
    pygame.display.quit()


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def log() -> tuple[logging.Logger, ListHandler]:
    logger = logging.getLogger(f"test.show.{id(object())}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = ListHandler()
    logger.addHandler(handler)
    return logger, handler


def playlist(*scenes: dict[str, Any], **show: Any) -> dict[str, Any]:
    head = {"title": "Test Show", "title_card_s": 1.0, "fade_s": 0.5, "idle_resume_s": 10.0, **show}
    return {"show": head, "scene": list(scenes)}


def scene(scenario: str = SMALL, seconds: float = 4.0, **more: Any) -> dict[str, Any]:
    return {"scenario": scenario, "seconds": seconds, "speed": 60, **more}


def exhibit(data: dict[str, Any], log: logging.Logger, size: tuple[int, int] = (1280, 720)) -> Exhibit:
    return Exhibit(playlist_from_dict(data, SCENARIOS, "test-playlist.toml"), size, log)


def play(ex: Exhibit, seconds: float, dt: float = 0.25, draw: bool = False) -> None:
    screen = pygame.Surface(ex.screen_size)
    for _ in range(round(seconds / dt)):
        ex.step(dt)
        if draw:
            ex.draw(screen)


# --- playlists ----------------------------------------------------------------------------------------


def test_shipped_playlist_loads_and_names_real_scenarios() -> None:
    show = load_playlist(SCENARIOS / "playlist.toml")
    assert len(show.scenes) >= 3
    assert all(s.scenario.is_file() for s in show.scenes)
    assert show.logo is not None and show.logo.is_file()
    triggers = {c.on for s in show.scenes for c in s.captions}
    assert {"job-start", "checkpoint", "congestion"} <= triggers, "captions follow simulated events"


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"camera": ["spin"]}, "scene[0].camera", "camera moves"),
        ({"seconds": -3}, "scene[0].seconds", "positive number"),
        ({"caption": [{"on": "job-start", "text": "{nope} starts"}]}, "scene[0].caption[0].text", "fields"),
        ({"caption": [{"on": "sunrise", "text": "x"}]}, "scene[0].caption[0].on", "one of"),
        ({"colour": "red"}, "scene[0].colour", "known field"),
    ],
)
def test_bad_playlist_fields_are_named(change: dict[str, Any], field: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as err:
        playlist_from_dict(playlist(scene(**change)), SCENARIOS, "p.toml")
    message = str(err.value)
    assert field in message and expected in message
    assert "\n" not in message


def test_bad_playlist_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "show.toml"
    bad.write_text('[show]\ntitle = "x"\naccent = [300, 0, 0]\n\n[[scene]]\nscenario = "a.toml"\nseconds = 5\n')
    assert main(["exhibit", str(bad), "--windowed", "--log", str(tmp_path / "x.log")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "show.toml" in err and "accent" in err and "line 3" in err
    assert main(["exhibit", str(tmp_path / "missing.toml"), "--windowed"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_missing_logo_is_an_error_naming_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"show\.logo"):
        playlist_from_dict(playlist(scene(), logo="nowhere.png"), SCENARIOS, "p.toml")


# --- scene flow ---------------------------------------------------------------------------------------


def test_scenes_open_with_a_title_play_fade_and_loop(log) -> None:
    logger, _ = log
    ex = exhibit(playlist(scene(seconds=3.0), scene(seconds=2.0, speed=30)), logger)
    seen = []
    for _ in range(140):
        ex.step(0.1)
        if not seen or seen[-1] != (ex.index, ex.phase):
            seen.append((ex.index, ex.phase))
    assert seen[:6] == [(0, "title"), (0, "scene"), (0, "fade"), (1, "title"), (1, "scene"), (1, "fade")]
    assert (0, "title") in seen[6:], "the playlist loops"
    assert ex.scenes_played >= 2


def test_scene_speed_drives_simulated_time(log) -> None:
    logger, _ = log
    ex = exhibit(playlist(scene(seconds=30.0, speed=90)), logger)
    play(ex, 1.5)  # title card and its fade
    assert ex.phase == "scene"
    start = ex.run.source.now
    play(ex, 2.0, draw=True)
    assert ex.run.source.now - start == pytest.approx(2.0 * 90, rel=0.05)
    state = ex.run.frame.state  # and the HUD says so (it said x120, the live view's default, whatever the scene's)
    assert state.speed == state.effective_speed == 90


def test_a_scenario_that_fails_to_load_is_skipped_with_a_log_line(log, tmp_path: Path) -> None:
    logger, handler = log
    (tmp_path / "broken.toml").write_text("[site\n")
    (tmp_path / SMALL).write_text((SCENARIOS / SMALL).read_text())
    data = playlist(scene("broken.toml"), scene(SMALL))
    ex = Exhibit(playlist_from_dict(data, tmp_path, "p.toml"), (1280, 720), logger)
    assert ex.index == 1 and ex.run is not None and ex.phase == "title"
    errors = handler.messages(logging.ERROR)
    assert len(errors) == 1 and "broken.toml" in errors[0] and "skipped" in errors[0]


def test_an_error_inside_a_scene_is_logged_and_the_show_moves_on(
    log, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logger, handler = log
    ex = exhibit(playlist(scene(seconds=20.0), scene(seconds=20.0)), logger)
    play(ex, 2.0)
    assert (ex.index, ex.phase) == (0, "scene")

    def boom(dt: float) -> None:
        raise RuntimeError("simulated fault in the core")

    monkeypatch.setattr(ex.run.source, "advance", boom)
    play(ex, 0.5, draw=True)
    assert ex.index == 1 and ex.phase == "title"
    failed = [r for r in handler.records if r.levelno >= logging.ERROR]
    assert len(failed) == 1 and failed[0].exc_info is not None, "the log keeps the traceback"
    assert "scene 1" in failed[0].getMessage()
    out = capsys.readouterr()
    assert out.out == "" and out.err == "", "nothing reaches the console"
    play(ex, 3.0, draw=True)
    assert ex.phase == "scene" and ex.index == 1


def test_an_error_while_drawing_moves_on_too(log, monkeypatch: pytest.MonkeyPatch) -> None:
    logger, handler = log
    ex = exhibit(playlist(scene(seconds=20.0), scene(seconds=20.0)), logger)
    play(ex, 2.0)

    def broken(*args: object) -> None:
        raise ValueError("bad pixels")

    monkeypatch.setattr(ex.run.frame, "draw", broken)
    play(ex, 0.25, draw=True)
    assert ex.index == 1
    assert any("drawing" in m for m in handler.messages(logging.ERROR))


def test_when_no_scene_loads_the_show_holds_an_intermission_and_retries(log, tmp_path: Path) -> None:
    logger, handler = log
    data = playlist(scene("gone-1.toml"), scene("gone-2.toml"))
    ex = Exhibit(playlist_from_dict(data, tmp_path, "p.toml"), (1280, 720), logger)
    assert ex.phase == "intermission" and ex.run is None
    screen = pygame.Surface(ex.screen_size)
    ex.draw(screen)  # a calm card, not a crash
    assert len(np.unique(pygame.surfarray.array3d(screen).reshape(-1, 3), axis=0)) > 5
    before = len(handler.messages(logging.ERROR))
    (tmp_path / "gone-2.toml").write_text((SCENARIOS / SMALL).read_text())  # someone fixes a file
    play(ex, INTERMISSION_S + 1.0, dt=0.5)
    assert ex.run is not None and ex.index == 1
    assert len(handler.messages(logging.ERROR)) == before + 1  # gone-1 skipped once more


def test_show_log_rotates(tmp_path: Path) -> None:
    logger = show_logger(tmp_path / "logs" / "show.log")
    for i in range(12_000):
        logger.info("line %d %s", i, "x" * 100)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files[0] == "show.log" and "show.log.1" in files and len(files) <= 4
    assert all(p.stat().st_size <= 1_100_000 for p in (tmp_path / "logs").iterdir())


# --- captions -----------------------------------------------------------------------------------------


def quiet(**changes: object) -> Simulation:
    return Simulation(scenario_from_dict(site(**changes)))


def rules(*captions: dict[str, Any]) -> tuple:
    data = playlist(scene(caption=list(captions)))
    return playlist_from_dict(data, SCENARIOS, "p.toml").scenes[0].captions


def test_job_start_caption_waits_for_a_big_enough_job() -> None:
    sim = quiet()
    track = CaptionTrack(
        rules({"on": "job-start", "min_gpus": 16, "text": "{gpus}-GPU {kind} job {id}"}), sim.fabric, sim.log_count
    )
    sim.submit(job(1, gpus=8, duration=600))
    sim.advance(10)
    assert track.update(1.0, sim.snapshot()) is None, "an 8-GPU job is below the caption's threshold"
    sim.submit(job(2, gpus=16, duration=600, arrival=sim.now))
    sim.advance(10)
    shown = track.update(2.0, sim.snapshot())
    assert shown is not None and shown.text == "16-GPU fine-tuning job 2"
    assert shown.since_s == 2.0 and shown.until_s == 2.0 + 8.0


def test_checkpoint_caption_fires_when_the_job_checkpoints_not_before() -> None:
    sim = quiet()
    track = CaptionTrack(rules({"on": "checkpoint", "text": "job {id} saves {params_b}B"}), sim.fabric, sim.log_count)
    sim.submit(job(7, gpus=16, duration=3000, params_b=3.0, checkpoint_s=600))
    sim.advance(590)
    assert track.update(1.0, sim.snapshot()) is None
    sim.advance(20)
    shown = track.update(2.0, sim.snapshot())
    assert shown is not None and shown.text == "job 7 saves 3B"


def test_congestion_caption_names_the_hot_link() -> None:
    sim = quiet(**{"topology.spines": 1, "topology.oversubscription": 2.0})
    track = CaptionTrack(
        rules({"on": "congestion", "threshold": 0.95, "text": "{link} at {util}%"}), sim.fabric, sim.log_count
    )
    assert track.update(0.5, sim.snapshot()) is None
    # Almost no compute per step: the ring runs at its NICs' line rate, as much as the one spine link carries.
    sim.submit(job(1, gpus=32, duration=600, tokens_per_gpu=1.0))
    sim.advance(30)
    shown = track.update(1.0, sim.snapshot())
    assert shown is not None and shown.text.endswith("at 100%") and " to " in shown.text


def test_captions_queue_and_hold_one_at_a_time() -> None:
    sim = quiet()
    track = CaptionTrack(
        rules({"on": "start", "text": "first", "hold": 5}, {"on": "time", "at": 1, "text": "second", "hold": 5}),
        sim.fabric,
    )
    assert track.update(0.0, sim.snapshot()).text == "first"
    assert track.update(2.0, sim.snapshot()).text == "first", "a caption holds its time before the next shows"
    assert track.update(5.0, sim.snapshot()).text == "second"
    assert track.update(10.5, sim.snapshot()) is None
    assert [text for _, text in track.history] == ["first", "second"]


def test_the_show_draws_captions_from_its_scene(log) -> None:
    logger, _ = log
    data = playlist(scene(seconds=20.0, caption=[{"on": "start", "text": "Hello, visitors", "hold": 10}]))
    ex = exhibit(data, logger)
    play(ex, 3.0, draw=True)
    assert ex.run.caption is not None and ex.run.caption.text == "Hello, visitors"


# --- visitors, the quit chord, drift ------------------------------------------------------------------


def key(k: int, mod: int = 0) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN, key=k, mod=mod, unicode="")


def test_only_the_chord_quits(log) -> None:
    logger, _ = log
    ex = exhibit(playlist(scene(seconds=30.0)), logger)
    play(ex, 2.0)
    for event in (key(pygame.K_ESCAPE), key(pygame.K_q), key(pygame.K_q, pygame.KMOD_LCTRL)):
        ex.handle(event)
        assert not ex.quit
    ex.handle(pygame.event.Event(pygame.QUIT))
    assert not ex.quit, "closing is for the chord alone; the window loop treats QUIT only when windowed"
    ex.handle(key(pygame.K_q, pygame.KMOD_LCTRL | pygame.KMOD_LSHIFT))
    assert ex.quit


def test_a_visitor_takes_the_camera_and_the_show_resumes_after_a_quiet_spell(log) -> None:
    logger, _ = log
    ex = exhibit(playlist(scene(seconds=120.0, camera=["fit", "glide-rack"]), idle_resume_s=10.0), logger)
    play(ex, 2.0)
    ex.handle(pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=3, flipped=False))
    assert ex.interactive
    visitor = ex.run.frame.site.camera
    play(ex, 9.0)
    assert ex.run.frame.site.camera == visitor, "the script leaves the visitor's view alone"
    assert ex.run.t > 9.0, "the scene keeps playing underneath"
    play(ex, 2.0)
    assert not ex.interactive
    cam, target = ex.run.frame.site.camera, ex.run.moves[0].target
    assert target is not None and target.zoom != visitor.zoom
    way = abs(np.log(target.zoom / visitor.zoom))
    assert abs(np.log(cam.zoom / visitor.zoom)) < 0.1 * way, "it glides back from the visitor's view (no cut)"
    play(ex, 60.0)  # into the glide-rack move
    assert ex.run.frame.site.camera != visitor, "the script has the camera again"
    assert ex.run.frame.site.camera.zoom > visitor.zoom * 0.5


def test_a_scene_takes_one_snapshot_per_change_at_most_every_snapshot_s(log) -> None:
    """Advancing and drawing a scene refresh its frame on one clock (the show's), so a changing source is
    snapshotted once per change and at most every SNAPSHOT_S, as in the live view (scene time and show
    time were mixed: every change was snapshotted twice, when advancing and again when drawing)."""
    from twin.render.app import SNAPSHOT_S

    logger, _ = log
    ex = exhibit(playlist(scene(seconds=60.0, speed=600)), logger)
    play(ex, 2.0)  # past the title card
    source, taken, versions = ex.run.source, [], set()
    snapshot = source.snapshot
    source.snapshot = lambda: taken.append(1) or snapshot()
    screen = pygame.Surface(ex.screen_size)
    for _ in range(180):  # 3 s at 60 fps
        ex.step(1 / 60)
        ex.draw(screen)
        versions.add(source.version)
    assert len(versions) > 5
    assert len(taken) <= min(len(versions), 3.0 / SNAPSHOT_S) + 3.0 / 0.5  # (and every 0.5 s regardless)


def test_drift_is_slow_and_bounded(log) -> None:
    logger, _ = log
    ex = exhibit(playlist(scene(seconds=30.0)), logger, size=(1920, 1080))
    offsets = []
    for _ in range(2000):
        ex.clock += 1.0  # a long day, sampled each second
        offsets.append(ex.drift())
    arr = np.array(offsets)
    assert np.abs(arr).max() <= DRIFT_PX * ex.scale + 1
    assert len({tuple(o) for o in offsets}) > 20, "the picture does move"
    assert np.abs(np.diff(arr, axis=0)).max() <= 1, "never a visible jump"
    m = ex.margin()  # the picture, drawn straight onto the screen, never leaves it
    assert (m + arr >= 0).all() and (m + arr + np.array(ex.size) <= np.array(ex.screen_size)).all()


def test_the_show_is_drawn_straight_onto_the_screen_inside_its_drift_margin(log) -> None:
    """No whole picture is copied a frame: the scenes are drawn a margin smaller than the screen, into
    the part of it the drift has reached; the margin is black, and a visitor's hand meets the picture
    where it is drawn."""
    logger, _ = log
    ex = exhibit(playlist(scene(seconds=30.0)), logger, size=(1280, 720))
    m = ex.margin()
    assert m > 0 and ex.size == (1280 - 2 * m, 720 - 2 * m) and ex.run.frame.size == ex.size
    screen = pygame.Surface(ex.screen_size)
    play(ex, 3.0)
    ex.clock = DRIFT_PERIODS_S[0] / 4  # the drift at its rightmost
    ex.draw(screen)
    dx, dy = ex.drift()
    assert dx > 0
    place = pygame.Rect((m + dx, m + dy), ex.size)
    px = pygame.surfarray.array3d(screen)
    outside = np.ones(ex.screen_size, bool)
    outside[place.left : place.right, place.top : place.bottom] = False
    assert not px[outside].any()
    inside = px[place.left : place.right, place.top : place.bottom].reshape(-1, 3)
    assert len(np.unique(inside[::7], axis=0)) > 50
    assert ex.run.controls.panes[0].local((place.x + 5, place.y + 7)) == (5, 7)


@pytest.mark.parametrize("size", [(1280, 720), (3840, 2160)])
def test_the_show_draws_at_every_resolution(log, size: tuple[int, int]) -> None:
    logger, _ = log
    data = playlist(scene(seconds=20.0, caption=[{"on": "start", "text": "A caption to read", "hold": 10}]))
    ex = exhibit(data, logger, size)
    screen = pygame.Surface(size)
    ex.step(0.5)
    ex.draw(screen)  # the title card
    title = pygame.surfarray.array3d(screen)
    assert (title.max(axis=2) > 200).any(), "bright text on the title card"
    play(ex, 2.0)
    ex.draw(screen)
    px = pygame.surfarray.array3d(screen).reshape(-1, 3)
    assert len(np.unique(px[::11], axis=0)) > 50


def test_text_scales_with_the_screen(log) -> None:
    logger, _ = log
    small = exhibit(playlist(scene()), logger, (1280, 720))
    big = exhibit(playlist(scene()), logger, (3840, 2160))
    assert big.scale == pytest.approx(3 * small.scale, rel=0.01)
    a = small.run.frame.text.render("Caption", 30, (255, 255, 255)).get_height()
    b = big.run.frame.text.render("Caption", 30, (255, 255, 255)).get_height()
    assert b == pytest.approx(3 * a, rel=0.1)


# --- the command --------------------------------------------------------------------------------------


def test_exhibit_command_runs_windowed_and_headless(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = (
        f'[show]\ntitle = "Smoke"\ntitle_card_s = 0.2\nfade_s = 0.1\n\n'
        f'[[scene]]\nscenario = "{(SCENARIOS / SMALL).as_posix()}"\nseconds = 0.5\nspeed = 60\n'
    )
    (tmp_path / "p.toml").write_text(data)
    logfile = tmp_path / "logs" / "exhibit.log"
    args = ["exhibit", str(tmp_path / "p.toml"), "--windowed", "--size", "800x450", "--log", str(logfile)]
    code = main([*args, "--quit-after", "1.5"])
    assert code == 0
    out = capfd.readouterr()
    assert out.out == "" and out.err == ""
    text = logfile.read_text()
    assert "show started" in text and "scene 1: small-lab.toml" in text and "show ended" in text
    assert text.index("show started") < text.index("scene 1: small-lab.toml"), "the log reads in order"
    assert "ERROR" not in text
    pygame.display.init()
    pygame.display.set_mode((640, 360))


def test_show_module_never_prints() -> None:
    source = Path(show_mod.__file__).read_text()
    assert "print(" not in source and "traceback.print" not in source


# --- video --------------------------------------------------------------------------------------------


def test_record_writes_a_video_that_decodes_to_the_right_frames(tmp_path: Path) -> None:
    import imageio_ffmpeg

    out = tmp_path / "clip.mp4"
    args = ["record", str(SCENARIOS / SMALL), "--seconds", "2", "--fps", "10", "--size", "320x240"]
    assert main([*args, "--out", str(out), "--at", "600"]) == 0
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = reader.__next__()
    assert tuple(meta["size"]) == (320, 240)
    frames = [np.frombuffer(f, np.uint8).reshape(240, 320, 3) for f in reader]
    assert len(frames) == 20
    assert frames[0].std() > 5, "a picture, not a blank"
    assert not np.array_equal(frames[0], frames[-1]), "it moves"
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_record_png_frames_and_steady_simulated_pace(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    args = ["record", str(SCENARIOS / SMALL), "--seconds", "0.5", "--fps", "8", "--size", "320x240"]
    assert main([*args, "--png", str(folder)]) == 0
    files = sorted(folder.glob("frame-*.png"))
    assert [f.name for f in files] == [f"frame-{i:06d}.png" for i in range(4)]
    assert pygame.image.load(str(files[0])).get_size() == (320, 240)

    from twin.render.record import record

    sim = Simulation(scenario_from_dict(site()))
    times = []
    record(sim, 5, 10, 60, (160, 90), png_dir=tmp_path / "p", progress=lambda n: times.append(sim.now))
    assert np.diff(times) == pytest.approx([6.0] * 4), "each frame is speed / fps simulated seconds"


def test_record_refuses_zero_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["record", str(SCENARIOS / SMALL), "--seconds", "0"])
    assert done.value.code == 2 and "--seconds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--size", "321x240"], "even width"),
        (["--out", "clip.gif"], ".mp4"),
        (["--png", "full"], "already holds"),
    ],
)
def test_record_refuses_bad_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "frame-000000.png").write_bytes(b"keep me")
    code = main(["record", str(SCENARIOS / SMALL), "--seconds", "1", *args])
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert (tmp_path / "full" / "frame-000000.png").read_bytes() == b"keep me"


def test_fault_captions_say_what_broke() -> None:
    data = site()
    data["faults"] = {"event": [{"at": 60, "target": "spine-00", "minutes": 5}]}
    sim = Simulation(scenario_from_dict(data))
    track = CaptionTrack(rules({"on": "fault", "text": "{alert}!"}), sim.fabric, sim.log_count)
    sim.advance(30)
    assert track.update(1.0, sim.snapshot()) is None
    sim.advance(40)
    shown = track.update(2.0, sim.snapshot())
    assert shown is not None and shown.text == "spine-00 down: traffic rerouted!"


def test_captions_that_waited_too_long_are_dropped() -> None:
    sim = quiet()
    track = CaptionTrack(
        rules({"on": "start", "text": "first", "hold": 30}, {"on": "time", "at": 1, "text": "stale", "hold": 5}),
        sim.fabric,
    )
    assert track.update(0.0, sim.snapshot()).text == "first"
    assert track.update(1.0, sim.snapshot()).text == "first"
    assert track.update(31.0, sim.snapshot()) is None, "'stale' fired at 1 s and waited 30 s: old news by then"


def test_visitors_mashing_everything_never_break_the_show(log) -> None:
    logger, handler = log
    ex = exhibit(playlist(scene(seconds=6.0), scene("fat-tree-campus.toml", seconds=6.0)), logger, (960, 540))
    rng = np.random.default_rng(5)
    screen = pygame.Surface((960, 540))
    kinds = ("click", "wheel", "drag", "key", "resize")
    for i in range(600):
        kind = kinds[int(rng.integers(len(kinds)))]
        pos = (int(rng.integers(0, 960)), int(rng.integers(0, 540)))
        if kind == "click":
            ex.handle(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))
            ex.handle(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=pos, button=1))
        elif kind == "wheel":
            ex.handle(pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=int(rng.integers(-5, 6)), flipped=False))
        elif kind == "drag":
            ex.handle(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))
            ex.handle(
                pygame.event.Event(pygame.MOUSEMOTION, pos=(pos[0] + 40, pos[1] - 30), rel=(40, -30), buttons=(1, 0, 0))
            )
        elif kind == "key":
            ex.handle(key(int(rng.choice([pygame.K_ESCAPE, pygame.K_q, pygame.K_SPACE, pygame.K_f, pygame.K_a]))))
        elif kind == "resize" and i % 50 == 0:
            size = (int(rng.integers(640, 1280)), int(rng.integers(360, 720)))
            ex.resize(size)
            screen = pygame.Surface(size)
        ex.step(0.1)
        ex.draw(screen)
    assert not ex.quit
    assert ex.scenes_played >= 2, "the show went on through scene changes"
    assert handler.messages(logging.ERROR) == []


def test_the_next_scene_is_built_while_the_current_one_plays(log) -> None:
    """Building a scene (simulation and layout) happens on a worker thread during the scene before, and
    gives the very same simulation as building it on the spot."""
    logger, _ = log
    ex = exhibit(playlist(scene(seconds=4.0), scene("fat-tree-campus.toml", seconds=4.0)), logger)
    play(ex, 1.0 + 0.5 + 0.2 * 4.0)  # title card, fade, and a fifth of the first scene
    assert ex.loader.index == -1, "nothing is built before the scene is well under way"
    play(ex, 0.25 * 4.0)
    assert ex.loader.index == 1, "the second scene is being built"
    built = ex.loader._thread
    assert built is not None
    built.join()
    play(ex, 2.75)  # the first scene ends and fades; the second opens with its title card
    assert ex.index == 1 and ex.loader._thread is None, "the built scene was taken"
    fresh = Simulation(load_scenario(SCENARIOS / "fat-tree-campus.toml"))
    got = ex.run.source
    assert got is not fresh and got.fabric.n_links == fresh.fabric.n_links
    fresh.run(got.now)
    assert np.array_equal(got.snapshot().gpu_owner, fresh.snapshot().gpu_owner)
    play(ex, 0.75, draw=True)  # the title card: the scene is drawn off screen, a part per frame
    assert ex.phase == "title" and ex.run.warmed == show_mod.WARM_STEPS


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_a_caption_never_covers_the_whole_site_shot(log, size: tuple[int, int]) -> None:
    """Lingang's storage arrays sit at the foot of its picture, where the captions show: the whole-site
    shot leaves the captions' band free (and still shows the whole site)."""
    logger, _ = log
    words = "Shanghai Lingang, January 2022: 12,000 GPUs and 3,740 PFLOPS of AI computing, at work"
    cue = {"on": "start", "text": words, "hold": 10}
    ex = exhibit(playlist(scene("lingang.toml", seconds=20.0, camera=["fit"], caption=[cue])), logger, size)
    play(ex, 2.0)
    run = ex.run
    cam, s = run.camera_at(run.t), run.frame.text.scale
    x0, y0, x1, y1 = run.frame.site.layout.bounds
    (left, top), (right, bottom) = cam.to_screen(np.array([[x0, y0], [x1, y1]]))
    vx, vy, vw, vh = cam.viewport
    box = ex._caption_box(run.frame.text, words, cam.viewport[2])
    assert box.get_height() > 80 * s  # the caption wraps to two lines
    assert vx <= left and right <= vx + vw and vy <= top
    assert bottom < vy + vh - round(10 * s) - box.get_height()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_the_whole_site_shot_of_a_followed_job_keeps_clear_of_its_card(log, size: tuple[int, int]) -> None:
    """Lingang's biggest job spans most of the site, so following it shows the whole site, with the job's
    inspector card at the foot of the view on the right, taller than the captions' band: the site is
    drawn whole left of the card (it covered the two right-hand storage arrays)."""
    logger, _ = log
    cue = {"on": "start", "text": "Each square is a server of 8 GPUs, coloured by the job it runs.", "hold": 40}
    scene_ = scene("lingang.toml", seconds=40.0, camera=["follow-biggest"], caption=[cue])
    ex = exhibit(playlist(scene_), logger, size)
    play(ex, 16.0, draw=True)  # past the glide (35% of the scene)
    run = ex.run
    card, cam = run.frame.hud.inspector_box, run.frame.site.camera
    assert run.frame.state.selected_job is not None and card is not None
    assert cam == run.camera_at(run.t)  # the camera has arrived
    x0, y0, x1, y1 = run.frame.site.layout.bounds
    (left, top), (right, bottom) = cam.to_screen(np.array([[x0, y0], [x1, y1]]))
    vx, vy, vw, vh = cam.viewport
    assert vx <= left and right <= vx + vw and vy <= top and bottom <= vy + vh  # the whole site
    assert right < card.left  # and none of it under the card
    _, caption = ex.caption_place(run)
    assert not caption.colliderect(card)


@pytest.mark.parametrize("scenario", ["fat-tree-campus.toml", SMALL])
def test_a_followed_job_that_ends_hands_over_to_the_biggest_job_left(log, scenario: str) -> None:
    """When the followed job ends, the move follows the biggest job still running, once per job that
    ends: the camera glides from where it is to the new job's shot and the card is the new job's (it
    stayed on servers gone idle, or beside a room left for a card that was gone)."""
    logger, _ = log
    fast = scene(scenario, seconds=600.0, speed=3000, camera=["follow-biggest"])  # jobs end within seconds
    ex = exhibit(playlist(fast), logger, (1280, 720))
    play(ex, 2.0)  # past the title card
    run = ex.run
    move, state = run.moves[0], run.frame.state
    handovers = 0
    for _ in range(240):
        job, since = move.job, move.glide_from
        play(ex, 0.25, draw=True)
        jobs = {j.id for j in run.frame.snap.jobs}
        if move.job != job:  # handed over
            handovers += 1
            assert job not in jobs and move.job in jobs and state.selected_job == move.job
            assert move.glide_from == run.t and move.target == run._target("follow-biggest")
        else:
            assert move.glide_from == since, "no new glide while the job runs"
        if move.job in jobs:
            assert run.frame.state.inspector is not None and run.frame.state.inspector[0].endswith(f"#{move.job}")
    assert handovers >= 2


@pytest.mark.parametrize("after", ["fit", "glide-rack"])
def test_a_followed_jobs_card_goes_when_the_next_move_begins(log, after: str) -> None:
    """The card belongs to the move that follows the job: the next move takes it down (it stayed up,
    no longer kept current, for the rest of the scene; over the rack shot it spoke of another job)."""
    logger, _ = log
    ex = exhibit(playlist(scene("lingang.toml", seconds=40.0, camera=["follow-biggest", after])), logger)
    play(ex, 12.0, draw=True)
    run = ex.run
    assert run.frame.state.selected_job is not None and run.frame.hud.inspector_box is not None
    play(ex, 20.0, draw=True)  # into the second move
    assert run.frame.state.selected_job is None and run.frame.state.inspector is None
    assert run.frame.hud.inspector_box is None and run.frame.site.highlight == ()


def test_a_caption_keeps_clear_of_the_card_of_the_job_the_camera_follows(log) -> None:
    """The inspector card of a followed job sits in the captions' band at the foot of the view: the
    caption goes left of it, wrapped to the room it has, and comes back to the middle without it."""
    logger, _ = log
    words = "Each square is a server of 8 GPUs, coloured by the job it runs. Dots are data in flight."
    cue = {"on": "start", "text": words, "hold": 30}
    ex = exhibit(playlist(scene("lingang.toml", seconds=40.0, camera=["fit"], caption=[cue])), logger, (1920, 1080))
    play(ex, 2.0, draw=True)
    run = ex.run
    _, alone = ex.caption_place(run)
    view = run.frame.site.camera.viewport
    assert abs(alone.centerx - (view[0] + view[2] // 2)) <= 1  # no card: the caption in the middle
    biggest = max(run.frame.snap.jobs, key=lambda j: j.gpus)
    run.frame.state.selected_job = biggest.id
    play(ex, 0.5, draw=True)
    card = run.frame.hud.inspector_box
    assert card is not None and card.width > 200
    _, rect = ex.caption_place(run)
    assert not rect.colliderect(card) and rect.left >= view[0]
    assert rect.height > alone.height  # wrapped to more lines in the narrower room
    s = run.frame.text.scale
    step, start = round(80 * s), view[0] + round(24 * s) + 12 * round(80 * s)
    places = set()
    for left in range(start, start + step, 5):  # the card's figures change its width: the caption stays put
        run.frame.hud.inspector_box = pygame.Rect(left, card.top, card.right - left, card.height)
        places.add(tuple(ex.caption_place(run)[1]))
    assert len(places) == 1
