"""Faults: what can break, by name, when it breaks at random, and what is broken now.

A :class:`Component` is what a fault hits: a GPU, a server, a cable (both directions of it), a switch
(every cable on it) or a storage array (its read and write bandwidth). ``FAULT_KINDS`` is the one table
of kinds: how many of each a site has, how to draw one at random, and what breaking one does to the
:class:`FaultState`. :func:`resolve` finds a component by the name the scenario uses;
:class:`RandomFaultProcess` draws failures from per-kind mean times between failures with the
simulation's fault random generator. The simulation turns the state into capacities, evictions and
:class:`FaultEffect` records; ``twin.alerts`` puts those into words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.scenario import FaultEvent, RandomFaults, Scenario
from twin.topology import NODE, STORAGE, SWITCH_KINDS, VIRTUAL, Fabric


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


class FaultState:
    """What is broken now, as counts (overlapping failures of one thing repair one at a time)."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self.link_down = np.zeros(fabric.n_links, np.int32)  # failures holding each link down
        self.gpu_down = np.zeros((fabric.n_nodes, fabric.gpus_per_node), np.int32)
        self.vertex_down = np.zeros(len(fabric.names), np.int32)  # for the picture: what is red
        self.storage_factor = np.ones(len(fabric.storage_gid))  # share of each array's bandwidth left
        self._storage_hits: dict[int, list[float]] = {}

    def change(self, comp: Component, factor: float, sign: int) -> None:
        """``comp`` fails (sign +1, to ``factor`` of its bandwidth for a degraded array) or is repaired (-1)."""
        FAULT_KINDS[comp.kind].apply(self, comp, factor, sign)
        if comp.gid >= 0:
            self.vertex_down[comp.gid] += sign

    def _storage(self, comp: Component, factor: float, sign: int) -> None:
        hits = self._storage_hits.setdefault(comp.storage, [])
        if sign > 0:
            hits.append(factor)
        elif factor in hits:
            hits.remove(factor)
        self.storage_factor[comp.storage] = min(hits, default=1.0)

    @property
    def alive(self) -> np.ndarray:
        return self.link_down == 0

    def capacities(self) -> np.ndarray:
        """Every link's capacity with what is broken taken out (storage limits scaled)."""
        fab = self.fabric
        cap = fab.link_cap * self.alive
        cap[fab.storage_read] *= self.storage_factor
        cap[fab.storage_write] *= self.storage_factor
        return cap

    def cut_nodes(self) -> np.ndarray:
        """Servers that lost any of their own cables: a rail of their rings is gone."""
        fab, alive = self.fabric, self.alive
        return ~(alive[fab.host_up].all(axis=1) & alive[fab.host_down].all(axis=1))

    def unusable(self) -> np.ndarray:
        """[node, gpu]: GPUs that cannot be given to a job (failed, or on a cut-off server)."""
        return (self.gpu_down > 0) | self.cut_nodes()[:, None]


@dataclass(frozen=True)
class FaultEffect:
    """What one failure or repair did, for the alert ticker and the log."""

    component: Component
    action: str  # fail | degrade
    factor: float
    failed: bool  # False for a repair
    jobs_hit: int = 0  # jobs sent back to the queue (or failed for good)
    gpus_idled: int = 0  # GPUs newly unusable


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault: how many a site has, drawing one at random, and breaking (or mending) it."""

    population: Callable[[Fabric], np.ndarray]  # candidate indices (GPUs, nodes, cables, switches, arrays)
    draw: Callable[[Fabric, int], Component]  # the component for one candidate index
    apply: Callable[[FaultState, Component, float, int], None]


def _cables(fab: Fabric) -> np.ndarray:
    return np.flatnonzero((fab.link_kind != VIRTUAL) & (fab.link_src < fab.link_dst))


def _gpu(fab: Fabric, i: int) -> Component:
    node, gpu = divmod(i, fab.gpus_per_node)
    gid = int(fab.node_gid[node])
    return Component("gpu", f"{fab.names[gid]} GPU {gpu}", gid, node, gpu)


def _cable(fab: Fabric, a: int) -> Component:
    src, dst = int(fab.link_src[a]), int(fab.link_dst[a])
    back = np.flatnonzero((fab.link_src == dst) & (fab.link_dst == src))
    return Component("link", f"{fab.names[src]}--{fab.names[dst]}", links=(a, *(int(x) for x in back[:1])))


def _vertex(fab: Fabric, gid: int) -> Component:
    comp = component_of_vertex(fab, gid)
    assert comp is not None
    return comp


def _add(counts: np.ndarray, index: object, sign: int) -> None:
    counts[index] += sign


FAULT_KINDS: dict[str, FaultKind] = {
    "gpu": FaultKind(
        lambda fab: np.arange(fab.n_gpus),
        _gpu,
        lambda st, c, f, sign: _add(st.gpu_down, (c.node, c.gpu), sign),
    ),
    "node": FaultKind(
        lambda fab: np.arange(fab.n_nodes),
        lambda fab, i: _vertex(fab, int(fab.node_gid[i])),
        lambda st, c, f, sign: _add(st.gpu_down, c.node, sign),
    ),
    "link": FaultKind(_cables, _cable, lambda st, c, f, sign: _add(st.link_down, list(c.links), sign)),
    "switch": FaultKind(
        lambda fab: np.flatnonzero(np.isin(fab.kind, SWITCH_KINDS)),
        _vertex,
        lambda st, c, f, sign: _add(st.link_down, list(c.links), sign),
    ),
    "storage": FaultKind(
        lambda fab: np.asarray(fab.storage_gid),
        _vertex,
        lambda st, c, f, sign: st._storage(c, f, sign),
    ),
}
KINDS = tuple(FAULT_KINDS)


class RandomFaultProcess:
    """Failures at random: for each kind with an MTBF, the next failure anywhere among its components
    comes after an exponential time (rate = components / MTBF); which one fails is uniform."""

    def __init__(self, spec: RandomFaults, fabric: Fabric, rng: np.random.Generator) -> None:
        self.spec = spec
        self.fabric = fabric
        self.rng = rng
        self._candidates = {k: kind.population(fabric) for k, kind in FAULT_KINDS.items()}
        self.population = {k: len(v) for k, v in self._candidates.items()}

    def kinds(self) -> list[str]:
        return [k for k in KINDS if getattr(self.spec, f"{k}_mtbf_hours") > 0 and self.population[k] > 0]

    def next_gap(self, kind: str) -> float:
        rate = self.population[kind] / (getattr(self.spec, f"{kind}_mtbf_hours") * 3600.0)
        return float(self.rng.exponential(1.0 / rate))

    def repair_s(self, kind: str) -> float:
        return getattr(self.spec, f"{kind}_repair_minutes") * 60.0

    def draw(self, kind: str) -> Component:
        i = int(self.rng.integers(self.population[kind]))
        return FAULT_KINDS[kind].draw(self.fabric, int(self._candidates[kind][i]))


def check_faults(scenario: Scenario, fabric: Fabric) -> list[Component]:
    """Every scripted fault resolved, in order (raises on the first bad name)."""
    return [resolve(fabric, e, scenario.source) for e in scenario.faults.events]
