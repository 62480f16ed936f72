"""Marketplace models: seller connections (OAuth) and the star-schema warehouse."""

from .connections import Connection, CsvUpload, Platform
from .csv_merge import CsvLineBeforeImage, CsvOrderBeforeImage
from .reports import ReportSettings
from .warehouse import (
    CsvStagingLine,
    DimCustomer,
    DimDate,
    DimProduct,
    DimShop,
    DimStatus,
    FactActivity,
    FactOrder,
    FactOrderLine,
    FactTraffic,
    Source,
)

__all__ = [
    "Connection", "CsvUpload", "CsvStagingLine", "CsvLineBeforeImage", "CsvOrderBeforeImage", "Platform", "ReportSettings",
    "DimCustomer", "DimDate", "DimProduct", "DimShop", "DimStatus", "FactActivity", "FactOrder", "FactOrderLine", "FactTraffic", "Source",
]
