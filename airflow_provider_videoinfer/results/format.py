"""The result file's key names, shared by the local server that writes result files and the readers.

Free of Airflow imports, so the local server can use it without Airflow installed.
"""

from __future__ import annotations

#: The lists every result file has, one element per sampled frame.
FRAME_OFFSET_KEY = "frame_offset"
TIME_OFFSET_KEY = "time_offset"
#: The public output-format page spells the keys with an ``s``; readers accept both spellings.
FRAME_OFFSET_KEYS = (FRAME_OFFSET_KEY, "frame_offsets")
TIME_OFFSET_KEYS = (TIME_OFFSET_KEY, "time_offsets")
