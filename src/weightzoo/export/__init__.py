"""Zoos for weight-space learning: the Small CNN Zoo layout on disk, and a Dataset of nfn weight spaces.

``export_zoos(paths, out_dir, canonical=False)`` (``python -m weightzoo.export``) writes ``weights.npy``,
``metrics.csv``, ``layout.csv`` and ``export.json``; ``read_export(folder)`` reads them back;
``WeightSpaceDataset`` (``dataset.py``, imports torch and nfn) serves a zoo or an export folder as nfn's
``WeightSpaceFeatures``. The format: docs/export.md.
"""

from weightzoo.export.read import Export, read_export
from weightzoo.export.write import export_zoos

__all__ = ["Export", "export_zoos", "read_export"]
