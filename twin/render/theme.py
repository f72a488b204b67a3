"""Colours and sizes of the view: a dark theme, one place to change it."""

from __future__ import annotations

BG = (9, 13, 26)
BG_GLOW = (16, 24, 46)
PANEL = (14, 20, 38)
PANEL_EDGE = (40, 54, 92)
BLOCK = (16, 22, 40)
BLOCK_EDGE = (34, 46, 78)
RACK = (22, 30, 52)
TEXT = (232, 238, 250)
TEXT_DIM = (140, 154, 186)
TEXT_FAINT = (88, 100, 132)
ACCENT = (86, 204, 255)
ACCENT_DIM = (38, 84, 116)  # the accent behind it: what could be (allocated peak) under what is
GOOD = (110, 226, 150)
WARN = (255, 184, 76)
HOT = (255, 86, 96)

NODE_IDLE = (30, 40, 66)
NO_DATA = (58, 60, 68)  # a server nothing is known about (live data missing): grey, not idle blue
SWITCH = {"leaf": (64, 82, 128), "spine": (84, 106, 168), "core": (104, 126, 196)}
STORAGE = (116, 96, 176)
GATEWAY = (60, 130, 150)

LINK_IDLE = (38, 50, 84)
BUS = (46, 60, 100)

# Traffic kinds, in twin.flows.TRAFFIC_KINDS order.
TRAFFIC = ((86, 214, 255), (120, 234, 140), (255, 190, 84), (214, 140, 255))
TRAFFIC_LABELS = ("gradient all-reduce", "training data", "checkpoint", "inference")
MEASURED = (214, 224, 244)  # traffic measured on a live cluster, of no known kind

FONT_FILES = {"regular": "Inter-Regular.otf", "semibold": "Inter-SemiBold.otf", "bold": "Inter-Bold.otf"}
