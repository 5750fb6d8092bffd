"""The Parquet store, its schema and its DuckDB views (ARCHITECTURE.md, "The store")."""

from astrokit.store._store import Store, atomic_write_bytes, default_store_path
from astrokit.store.schema import TABLES, arrow_schema, conform, describe, empty_table

__all__ = ["TABLES", "Store", "arrow_schema", "atomic_write_bytes", "conform", "default_store_path",
           "describe", "empty_table"]
