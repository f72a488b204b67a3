"""``quick_init``: the quicker constructor of frozen records makes the same instances as the dataclass's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from twin.flows import FlowGroup
from twin.records import quick_init
from twin.trace import TraceJob
from twin.workload import JobSpec


def _pair():
    """The same frozen dataclass twice: as dataclasses makes it, and with ``quick_init``."""

    def make():
        @dataclasses.dataclass(frozen=True)
        class Record:
            a: int
            b: str
            c: float = 1.5
            d: tuple[int, ...] = ()

        return Record

    return make(), quick_init(make())


def test_quick_init_makes_the_instance_the_dataclass_makes() -> None:
    plain, quick = _pair()
    for args, kwargs in [((1, "x"), {}), ((1,), {"b": "y", "d": (2,)}), ((), {"a": 3, "b": "z", "c": 0.0})]:
        p, q = plain(*args, **kwargs), quick(*args, **kwargs)
        assert vars(q) == vars(p) and list(vars(q)) == list(vars(p))  # the same fields, in field order
        assert repr(q) == repr(p).replace(plain.__qualname__, quick.__qualname__)
        assert q == quick(*args, **kwargs) and hash(q) == hash(quick(*args, **kwargs))
    q = quick(1, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.a = 2  # type: ignore[misc]
    assert dataclasses.replace(q, c=9.0) == quick(1, "x", 9.0)
    assert dataclasses.asdict(q) == {"a": 1, "b": "x", "c": 1.5, "d": ()}
    for bad_args, bad_kwargs in [((), {}), ((1, "x", 2.0, (), 5), {}), ((1,), {"b": "x", "e": 1})]:
        with pytest.raises(TypeError):  # missing, one too many, unknown: refused as by the dataclass
            quick(*bad_args, **bad_kwargs)


def test_quick_init_refuses_what_it_cannot_copy() -> None:
    @dataclasses.dataclass
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        a: int

    @dataclasses.dataclass(frozen=True)
    class Posted:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True)
    class Factory:
        a: list = dataclasses.field(default_factory=list)

    for cls in (Mutable, Slotted, Posted, Factory):
        with pytest.raises(TypeError, match=cls.__name__):
            quick_init(cls)


@pytest.mark.parametrize(
    ("cls", "given"),
    [
        (
            JobSpec,
            dict(
                id=7,
                kind="research",
                gpus=2,
                arrival_s=1.0,
                duration_s=60.0,
                estimate_s=90.0,
                params_b=0.1,
                read_mbs_per_gpu=2.0,
                checkpoint_s=0.0,
                serve_mbs_per_gpu=0.0,
            ),
        ),
        (
            TraceJob,
            dict(line=3, job_id="j", gpus=8, submit=1.5e9, runtime_s=10.0, recorded_wait_s=None, outcome="failed"),
        ),
        (
            FlowGroup,
            {f.name: np.arange(2) for f in dataclasses.fields(FlowGroup)} | {"key": (1, 0)},
        ),
    ],
)
def test_the_records_made_quickly_hold_every_field_with_its_default(cls, given) -> None:
    made = cls(**given)
    for f in dataclasses.fields(cls):
        expected = given.get(f.name, f.default)
        assert getattr(made, f.name) is expected
    assert list(vars(made)) == [f.name for f in dataclasses.fields(cls)]
