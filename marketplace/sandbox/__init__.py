"""Fake Lazada and Shopee open platforms (see each module's docstring)."""

from .lazada import LazadaSandbox
from .shopee import ShopeeSandbox

SANDBOXES = [LazadaSandbox, ShopeeSandbox]

__all__ = ["LazadaSandbox", "ShopeeSandbox", "SANDBOXES"]
