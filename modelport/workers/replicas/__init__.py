"""Replica sets: one model name served by several workers, with routing, health and draining.

A ``ReplicaSet`` is itself a worker. May import ``core`` and ``workers``; never a surface.
"""

from modelport.workers.replicas.replica import HealthPolicy, Replica, ReplicaState
from modelport.workers.replicas.replica_set import ReplicaSet
from modelport.workers.replicas.routing import STRATEGIES

__all__ = ["STRATEGIES", "HealthPolicy", "Replica", "ReplicaSet", "ReplicaState"]
