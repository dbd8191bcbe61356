"""Historical bar files: reading, validation, resampling on load, uploads and first-start samples."""

from __future__ import annotations

from see_grpc.adapters.bars.readers import read_bar_file, read_dukascopy, read_histdata
from see_grpc.adapters.bars.samples import ensure_sample_data
from see_grpc.adapters.bars.store import FileBarStore

__all__ = ["FileBarStore", "ensure_sample_data", "read_bar_file", "read_dukascopy", "read_histdata"]
