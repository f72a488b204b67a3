"""What an operator reads when something breaks or comes back: fault effects put into words."""

from __future__ import annotations

from twin.faults import FaultEffect


def alert_text(effect: FaultEffect) -> str:
    """One line for the alert ticker: what happened to what, and what it hit."""
    comp = effect.component
    if not effect.failed:
        return f"{comp.name} restored" if comp.kind == "storage" else f"{comp.name} back up"
    if comp.kind == "storage" and effect.action == "degrade":
        return f"{comp.name} degraded to {effect.factor:.0%} of its bandwidth"
    if comp.kind == "storage":
        return f"{comp.name} lost: jobs reading or saving to it stall"
    parts = []
    if effect.jobs_hit:
        parts.append("1 job restarting" if effect.jobs_hit == 1 else f"{effect.jobs_hit} jobs restarting")
    if effect.gpus_idled:
        parts.append("1 GPU idle" if effect.gpus_idled == 1 else f"{effect.gpus_idled} GPUs idle")
    if not parts:
        parts.append("traffic rerouted" if comp.kind in ("link", "switch") else "no job hit")
    return f"{comp.name} down: {', '.join(parts)}"
