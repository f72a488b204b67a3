"""Names a user meets in files, flags and on screen, each defined once: what the kinds of job are called
and which layouts the view offers. (Scheduling policies are named in ``twin.scheduler.POLICIES`` and
fault kinds in ``twin.faults.FAULT_KINDS``, beside what they do.)"""

from __future__ import annotations

JOB_KIND_WORDS = {  # a job kind as scenarios spell it -> as a visitor reads it
    "pretrain": "pre-training",
    "finetune": "fine-tuning",
    "research": "research",
    "eval": "evaluation",
    "inference": "inference",
}
JOB_KINDS = tuple(JOB_KIND_WORDS)
LAYOUTS = ("hall", "graph")  # hall: racks as on the floor; graph: the fabric as a network


def job_kind_word(kind: str) -> str:
    return JOB_KIND_WORDS.get(kind, kind)
