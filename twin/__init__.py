"""twin: a digital twin of an AI computing center.

The simulation core (everything in this package except ``twin.render``) is headless and never imports
pygame: ``Simulation(load_scenario(path)).advance(dt)`` is all a caller needs.
"""

from twin.errors import ScenarioError
from twin.scenario import Scenario, load_scenario
from twin.simulation import Simulation

__all__ = ["Scenario", "ScenarioError", "Simulation", "load_scenario"]
