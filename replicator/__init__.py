"""Schematic Datastream Replicator: keeps a shared Redis in sync with Schematic."""

__version__ = "0.1.0"
