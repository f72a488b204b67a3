"""A small client for the Prometheus HTTP API (``/api/v1/query``, ``/api/v1/query_range``), standard
library only: form-encoded POSTs with a timeout, values parsed from their strings, and every failure
(unreachable, timed out, a bad query, a reply that is not the API's) as one :class:`PromError`."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import numpy as np


class PromError(Exception):
    """A query that could not be answered; ``unreachable`` when Prometheus itself could not be reached."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels (``__name__`` included when kept) and value."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: times (Unix s) and values."""

    labels: dict[str, str]
    times: np.ndarray
    values: np.ndarray


class PromClient:
    """Queries one Prometheus server at ``url`` (e.g. ``http://127.0.0.1:9090``)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """An instant query; a scalar result comes back as one sample without labels."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._object(self._post("/api/v1/query", params))
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return [Sample({}, _number(result[1]))]
        if kind != "vector" or not isinstance(result, list):
            raise PromError(f"{self.url}: expected a vector for {expr!r}, got {kind!r}")
        try:
            return [Sample(dict(r["metric"]), _number(r["value"][1])) for r in result]
        except (KeyError, IndexError, TypeError) as err:
            raise PromError(f"{self.url}: malformed vector for {expr!r} ({err})") from None

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """A range query from ``start`` to ``end`` (Unix s) every ``step`` seconds."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._object(self._post("/api/v1/query_range", params))
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PromError(f"{self.url}: expected a matrix for {expr!r}, got {data.get('resultType')!r}")
        out = []
        try:
            for r in data["result"]:
                pairs = r["values"]
                times = np.array([float(p[0]) for p in pairs])
                values = np.array([_number(p[1]) for p in pairs])
                out.append(Series(dict(r["metric"]), times, values))
        except (KeyError, IndexError, TypeError) as err:
            raise PromError(f"{self.url}: malformed matrix for {expr!r} ({err})") from None
        return out

    def metric_names(self, start: float, end: float) -> set[str]:
        """Names of the metrics with samples between ``start`` and ``end`` (Unix s); cheap, no series read."""
        params = urllib.parse.urlencode({"start": f"{start:.3f}", "end": f"{end:.3f}"})
        data = self._request(f"/api/v1/label/__name__/values?{params}", None)
        if not isinstance(data, list):
            raise PromError(f"{self.url}: expected a list of metric names, got {type(data).__name__}")
        return {str(n) for n in data}

    def scrape_interval(self) -> float | None:
        """The shortest scrape interval in the server's configuration (seconds), or None if not found."""
        data = self._request("/api/v1/status/config", None)
        if not isinstance(data, dict):
            raise PromError(f"{self.url}: expected the configuration as an object")
        found = re.findall(r"scrape_interval:\s*([0-9a-z.]+)", str(data.get("yaml", "")))
        seconds = [s for s in (parse_duration(f) for f in found) if s]
        return min(seconds) if seconds else None

    def _object(self, data: object) -> dict:
        if not isinstance(data, dict):
            raise PromError(f"{self.url}: expected a data object in the reply")
        return data

    def _post(self, path: str, params: dict[str, str]) -> object:
        return self._request(path, urllib.parse.urlencode(params).encode())

    def _request(self, path: str, body: bytes | None) -> object:
        """The ``data`` of an API reply (an object or a list); PromError for anything else."""
        req = urllib.request.Request(self.url + path, data=body, method="POST" if body is not None else "GET")
        if body is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:  # the API answers errors with JSON and a 4xx/5xx status
            raw = err.read()
            try:
                reply = json.loads(raw)
                message = f"{reply.get('errorType', 'error')}: {reply.get('error', '')}"
            except (ValueError, AttributeError):
                message = f"HTTP {err.code} {err.reason}"
            raise PromError(f"{self.url}{path}: {message}", unreachable=err.code >= 500) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, socket.timeout | TimeoutError):
                reason = f"no answer within {self.timeout:g} s"
            raise PromError(f"cannot reach Prometheus at {self.url} ({reason})", unreachable=True) from None
        try:
            reply = json.loads(raw)
        except ValueError:
            raise PromError(f"{self.url}{path}: expected JSON from the Prometheus API, got something else") from None
        if not isinstance(reply, dict) or reply.get("status") != "success":
            raise PromError(f"{self.url}{path}: {reply.get('errorType', 'error')}: {reply.get('error', reply)}")
        if "data" not in reply:
            raise PromError(f"{self.url}{path}: expected data in the reply")
        return reply["data"]


def _number(text: object) -> float:
    """A sample value: the API sends them as strings ("1.5", "NaN", "+Inf")."""
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PromError(f"expected a number as a sample value, got {text!r}") from None


def parse_duration(text: str) -> float | None:
    """A Prometheus duration like '15s', '1m30s', '500ms' in seconds; None if it is not one."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        return None
    return sum(float(a) * units[b] for a, b in parts)
