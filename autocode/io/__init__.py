"""Readers and writers: canonical CSV/XLSX/JSONL tables, transcripts (.txt/.docx), REFI-QDA projects."""

from .precoded import write_suggestions
from .table import read_coded, read_segments, split_codes, write_coded, write_table
from .transcript import Document, read_documents, read_transcripts

__all__ = ["Document", "read_coded", "read_documents", "read_segments", "read_transcripts", "split_codes",
           "write_coded", "write_suggestions", "write_table"]
