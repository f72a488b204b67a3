"""Faults: what can break, by name, and when it breaks at random.

A :class:`Component` is what a fault hits: a GPU, a server, a cable (both directions of it), a switch
(every cable on it) or a storage array (its read and write bandwidth). :func:`resolve` finds one by the
name the scenario uses; :class:`RandomFaults` draws failures from per-component mean times between
failures with the simulation's fault random generator. The simulation applies them (``simulation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.scenario import FaultEvent, RandomFaults, Scenario
from twin.topology import NODE, STORAGE, SWITCH_KINDS, VIRTUAL, Fabric

KINDS = ("gpu", "node", "link", "switch", "storage")


@dataclass(frozen=True)
class Component:
    kind: str  # gpu | node | link | switch | storage
    name: str
    gid: int = -1  # graph vertex (server, switch, storage array); -1 for a cable
    node: int = -1  # compute node index, for gpu and node
    gpu: int = -1
    links: tuple[int, ...] = ()  # directed links that go dead (cable, switch, or a server's own cables)
    storage: int = -1  # storage array index


def resolve(fabric: Fabric, event: FaultEvent, source: str) -> Component:
    """The component a scripted fault names; a ScenarioError naming the field if there is none."""
    names = {n: g for g, n in enumerate(fabric.names)}
    target = event.target.strip()

    def bad(expected: str) -> ScenarioError:
        return ScenarioError(source, event.where, f"expected {expected}, got {target!r}")

    if "--" in target:
        a, b = (names.get(p.strip()) for p in target.split("--", 1))
        if a is None or b is None:
            raise bad("a cable between two components of this site, like leaf-000--spine-00")
        links = np.flatnonzero(
            ((fabric.link_src == a) & (fabric.link_dst == b)) | ((fabric.link_src == b) & (fabric.link_dst == a))
        )
        if not len(links):
            raise bad("a cable that exists (those two are not connected)")
        comp = Component("link", target, links=tuple(int(x) for x in links))
    elif target in names:
        comp = component_of_vertex(fabric, names[target])
        if comp is None:
            raise bad("a server, switch, storage array or cable (the gateway cannot fail)")
        if event.gpu >= 0:
            if comp.kind != "node":
                raise ScenarioError(source, event.where, f"expected a server for a GPU fault, got {target!r}")
            if event.gpu >= fabric.gpus_per_node:
                raise ScenarioError(
                    source, event.where, f"expected a GPU index below {fabric.gpus_per_node}, got {event.gpu}"
                )
            comp = Component("gpu", f"{target} GPU {event.gpu}", comp.gid, comp.node, event.gpu)
    else:
        examples = [fabric.names[int(fabric.node_gid[0])]]
        examples += [n for n in fabric.names if n.startswith(("leaf", "spine", "core"))][:2]
        examples += [fabric.names[int(fabric.storage_gid[0])]]
        raise bad(f"a component of this site ({', '.join(examples)}, ...) or a cable a--b")
    if event.action == "degrade" and comp.kind != "storage":
        raise ScenarioError(source, event.where, f"expected a storage array to degrade, got {target!r}")
    return comp


def component_of_vertex(fabric: Fabric, gid: int) -> Component | None:
    kind = int(fabric.kind[gid])
    name = fabric.names[gid]
    touching = np.flatnonzero(((fabric.link_src == gid) | (fabric.link_dst == gid)) & (fabric.link_kind != VIRTUAL))
    links = tuple(int(x) for x in touching)
    if kind == NODE:
        node = int(np.flatnonzero(fabric.node_gid == gid)[0])
        return Component("node", name, gid, node)
    if kind in SWITCH_KINDS:
        return Component("switch", name, gid, links=links)
    if kind == STORAGE:
        return Component("storage", name, gid, storage=int(np.flatnonzero(fabric.storage_gid == gid)[0]))
    return None


class RandomFaultProcess:
    """Failures at random: for each kind with an MTBF, the next failure anywhere among its components
    comes after an exponential time (rate = components / MTBF); which one fails is uniform."""

    def __init__(self, spec: RandomFaults, fabric: Fabric, rng: np.random.Generator) -> None:
        self.spec = spec
        self.fabric = fabric
        self.rng = rng
        cables = np.flatnonzero((fabric.link_kind != VIRTUAL) & (fabric.link_src < fabric.link_dst))
        switches = np.flatnonzero(np.isin(fabric.kind, SWITCH_KINDS))
        self.population = {
            "gpu": fabric.n_gpus,
            "node": fabric.n_nodes,
            "link": len(cables),
            "switch": len(switches),
            "storage": len(fabric.storage_gid),
        }
        self._cables, self._switches = cables, switches

    def kinds(self) -> list[str]:
        return [k for k in KINDS if getattr(self.spec, f"{k}_mtbf_hours") > 0 and self.population[k] > 0]

    def next_gap(self, kind: str) -> float:
        rate = self.population[kind] / (getattr(self.spec, f"{kind}_mtbf_hours") * 3600.0)
        return float(self.rng.exponential(1.0 / rate))

    def repair_s(self, kind: str) -> float:
        return getattr(self.spec, f"{kind}_repair_minutes") * 60.0

    def draw(self, kind: str) -> Component:
        fab, rng = self.fabric, self.rng
        i = int(rng.integers(self.population[kind]))
        if kind == "gpu":
            node, gpu = divmod(i, fab.gpus_per_node)
            gid = int(fab.node_gid[node])
            return Component("gpu", f"{fab.names[gid]} GPU {gpu}", gid, node, gpu)
        if kind == "node":
            return component_of_vertex(fab, int(fab.node_gid[i]))  # type: ignore[return-value]
        if kind == "link":
            a = int(self._cables[i])
            src, dst = int(fab.link_src[a]), int(fab.link_dst[a])
            links = np.flatnonzero((fab.link_src == dst) & (fab.link_dst == src))
            return Component("link", f"{fab.names[src]}--{fab.names[dst]}", links=(a, *(int(x) for x in links[:1])))
        if kind == "switch":
            return component_of_vertex(fab, int(self._switches[i]))  # type: ignore[return-value]
        return component_of_vertex(fab, int(fab.storage_gid[i]))  # type: ignore[return-value]


def check_faults(scenario: Scenario, fabric: Fabric) -> list[Component]:
    """Every scripted fault resolved, in order (raises on the first bad name)."""
    return [resolve(fabric, e, scenario.source) for e in scenario.faults.events]
