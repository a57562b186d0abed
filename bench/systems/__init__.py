"""The server side of each benchmarked system: real processes on free loopback ports.

Each system (``base.System``; one module per system) has ``start(base_dir, users)``,
``stop()``, ``processes()`` (name -> pid of every server process whose CPU and memory
count for it) and ``client_config()`` (what the load generator needs to connect: URLs,
tokens). Servers come from ``localservers`` (the project's own helpers), so no system
ever touches the machine's Redis (6379), NATS (4222) or PocketBase (8090).
"""
from __future__ import annotations

from .base import StartError, System
from .channels_tutorial import TutorialSystem
from .nats_raw import NatsRawSystem
from .pocketbase_realtime import PocketBaseRealtimeSystem
from .relay import RelaySystem

__all__ = ["SYSTEM_CLASSES", "StartError", "System"]

# config.SYSTEMS name -> class
SYSTEM_CLASSES = {cls.name: cls for cls in (RelaySystem, TutorialSystem, PocketBaseRealtimeSystem, NatsRawSystem)}
