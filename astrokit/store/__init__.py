"""The Parquet store, its schema and its DuckDB views (ARCHITECTURE.md, "The store"); S3 stores and backups."""

from astrokit.store._backup import (
                                    STORAGE_PRICES,
                                    backup,
                                    diff_manifest,
                                    estimate_cost,
                                    list_backups,
                                    read_manifest,
                                    restore,
                                    set_lifecycle,
                                    storage_report,
                                    verify_backup,
)
from astrokit.store._store import Store, atomic_write_bytes, default_store_path
from astrokit.store.schema import TABLES, arrow_schema, conform, describe, empty_table

__all__ = ["STORAGE_PRICES", "TABLES", "Store", "arrow_schema", "atomic_write_bytes", "backup", "conform",
           "default_store_path", "describe", "diff_manifest", "empty_table", "estimate_cost", "list_backups",
           "read_manifest", "restore", "set_lifecycle", "storage_report", "verify_backup"]
