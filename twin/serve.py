"""``python main.py serve``: run a simulation headless and expose it on ``/metrics`` as real exporters would.

The loop advances the simulation by speed x wall time in small steps and swaps a fresh export state
into the collector after each; scrapes are answered by prometheus_client's HTTP server in its own
threads. SIGTERM, SIGINT and SIGHUP end it cleanly (well within 2 s) with one log line.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import CONTENT_TYPE_LATEST, ThreadingWSGIServer

from twin.exporter import SiteCollector, state_from
from twin.scenario import Scenario
from twin.simulation import Simulation

TICK_S = 0.1  # wall seconds between simulation steps and state swaps
BUDGET_S = 0.5  # wall time one tick may spend simulating; beyond it the run falls behind, never stalls
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class ServeError(Exception):
    """The server cannot start (port taken, address not available); one line for the user."""


def advance_sim(
    sim: Simulation, target: float, budget_s: float = BUDGET_S, stop: threading.Event | None = None
) -> None:
    """Run the simulation towards ``target`` in steps of a few metric samples, within a wall budget."""
    chunk = 10 * sim.step_s
    start = time.perf_counter()
    while sim.now < target and time.perf_counter() - start < budget_s and not (stop and stop.is_set()):
        sim.run(min(target, sim.now + chunk))


class _QuietHandler(WSGIRequestHandler):
    """No access log on the console: Prometheus scrapes every second."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def metrics_app(current: Callable[[], SiteCollector | None]):
    """A WSGI app answering ``/metrics`` (and ``/``) with the current collector's exposition (503 while
    there is none yet), 404 elsewhere."""

    def app(environ: dict, start_response):
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found; the metrics are at /metrics\n"]
        collector = current()
        if collector is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting\n"]
        body = collector.exposition()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    return app


def listen(host: str, port: int, app) -> ThreadingWSGIServer:
    """A threading HTTP server bound to host:port (IPv4 or IPv6, whichever the address is)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    return make_server(host, port, app, Server, handler_class=_QuietHandler)


def serve(
    scenario: Scenario,
    port: int,
    host: str = "127.0.0.1",
    speed: float = 1.0,
    seed: int | None = None,
    at: float = 0.0,
    log: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve the scenario's simulation until a stop signal (or ``stop`` is set); returns the exit code.
    The port is taken first, so a port in use fails at once, not after a long ``at``."""
    say = log or (lambda text: print(text, file=sys.stderr, flush=True))
    holder: list[SiteCollector] = []
    try:
        httpd = listen(host, port, metrics_app(lambda: holder[0] if holder else None))
    except socket.gaierror:
        raise ServeError(f"--host {host!r}: expected an address of this machine, like 127.0.0.1") from None
    except OSError as err:
        what = "already in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
        raise ServeError(f"--port {port}: cannot listen on {host} ({what}); expected a free port") from None
    stop = stop or threading.Event()
    caught: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        caught.append(signal.Signals(signum).name)
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    server = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    try:
        sim = Simulation(scenario, seed=seed)
        if at > 0:
            advance_sim(sim, at, budget_s=float("inf"), stop=stop)
        collector = SiteCollector(sim)
        clock = collector.clock
        collector.publish(state_from(sim, sim.snapshot(), clock(), None))
        holder.append(collector)
        server.start()
        say(
            f"serving {scenario.site.name} on http://{host}:{httpd.server_port}/metrics "
            f"(t = {sim.now:g} s, speed x{speed:g}; SIGTERM or Ctrl+C stops)"
        )
        last = clock()
        while not stop.wait(TICK_S):
            now = clock()
            dt, last = now - last, now
            if speed > 0:
                advance_sim(sim, sim.now + speed * dt, stop=stop)
                collector.publish(state_from(sim, sim.snapshot(), clock(), collector.state))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if server.is_alive():
            httpd.shutdown()
        httpd.server_close()
    say(f"stopped by {caught[0] if caught else 'request'} at t = {sim.now:g} s")
    return 0
