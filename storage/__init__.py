"""Durable storage for sessions: a SQLite event store and the data folder that holds it.

Never imports gradio; collabvr/ never imports this package's sqlite code, only the EventStore protocol.
"""

from storage.data_dir import (
    DATA_DIR_ENV, delete_session_and_files, open_data_dir, open_store_at, private_folder, resolve_data_dir,
    served_folders,
)
from storage.export import ArchiveError, ExportResult, export_all, export_sessions, import_archive
from storage.sqlite_store import AnnotationRow, BenchRunRow, SessionRow, SQLiteEventStore, StoreBusy

__all__ = ["AnnotationRow", "ArchiveError", "BenchRunRow", "DATA_DIR_ENV", "ExportResult", "SQLiteEventStore", "SessionRow", "StoreBusy",
           "delete_session_and_files", "export_all", "export_sessions", "import_archive", "open_data_dir",
           "open_store_at", "private_folder", "resolve_data_dir", "served_folders"]
