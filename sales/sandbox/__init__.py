"""Fake JD Sports and Verkada upstreams for tests, demos and the benchmark.

Contract choices that are not in /work/shared/upstreams are written in each
module's docstring (`jdsports.py`, `verkada/__init__.py`).
"""

from .jdsports import JDSportsSandbox
from .verkada import VerkadaSandbox

SANDBOXES = [JDSportsSandbox, VerkadaSandbox]

__all__ = ["JDSportsSandbox", "VerkadaSandbox", "SANDBOXES"]
