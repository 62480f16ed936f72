"""Marketplace models: seller connections (OAuth) and the star-schema warehouse."""

from .connections import Connection, CsvUpload, Platform
from .warehouse import (
    DimCustomer,
    DimDate,
    DimProduct,
    DimShop,
    DimStatus,
    FactOrderLine,
    Source,
)

__all__ = [
    "Connection", "CsvUpload", "Platform",
    "DimCustomer", "DimDate", "DimProduct", "DimShop", "DimStatus", "FactOrderLine", "Source",
]
