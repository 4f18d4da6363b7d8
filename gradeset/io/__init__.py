"""Files in and out: streaming readers, atomic writers, shard folders, reject files.

Formats here are *file* formats (JSONL, Parquet, CSV, HF folders, shards); what the
fields mean (the layout) is ``gradeset.formats``' business.
"""

from gradeset.io.atomic import atomic_open, sha256_file, write_bytes_atomic
from gradeset.io.readers import detect_format, is_empty, iter_rows, peek_rows
from gradeset.io.rejects import Reject, RejectLog, rejects_path_for
from gradeset.io.shards import ShardWriter, list_shards, read_manifest
from gradeset.io.writers import Writer, batched, dumps, open_writer, output_format, write_rows

__all__ = [
    "Reject", "RejectLog", "ShardWriter", "Writer", "atomic_open", "batched", "detect_format", "dumps",
    "is_empty", "iter_rows", "list_shards", "open_writer", "output_format", "peek_rows", "read_manifest",
    "rejects_path_for", "sha256_file", "write_bytes_atomic", "write_rows",
]
