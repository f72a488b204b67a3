"""The one error a user can cause with their input, and how it reads."""

from __future__ import annotations


class ScenarioError(Exception):
    """Bad user input: names the file, the line or field, and what was expected.

    ``str(err)`` is the single line the CLI prints before exiting with code 2.
    """

    def __init__(self, source: str, where: str, expected: str) -> None:
        self.source = source
        self.where = where
        self.expected = expected
        location = f"{source}: {where}" if where else source
        super().__init__(f"{location}: {expected}")
