"""A simulated Schematic service: the datastream WebSocket and the REST API on one port.

Tests, the demo and the benchmarks of the replicator run against it, and operators can
try the replicator with it without a Schematic account::

    from replicator.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(api_key="sim-key", companies=100, users=300)) as sim:
        company_id = sim.truth()["companies"][0]["id"]
        stream_id = sim.patch_company(company_id, {"traits": []})
"""

from replicator.simulator.burst import BurstResult
from replicator.simulator.config import SimulatorConfig
from replicator.simulator.connections import ConnectionInfo
from replicator.simulator.projection import api_projection
from replicator.simulator.runner import Simulator

__all__ = ["BurstResult", "ConnectionInfo", "Simulator", "SimulatorConfig", "api_projection"]
