"""Files: zoo files (``store``), atomic writes, checksums and damaged-file handling (``atomic``), and the
provenance every file carries (``provenance``)."""
