"""Logging set-up for workflow scripts: everything, including a crash's traceback, goes to the rule's log."""

import logging
import sys


def to_file(path) -> None:
    logging.basicConfig(
        filename=str(path), level=logging.INFO, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.captureWarnings(True)

    def log_crash(kind, value, traceback):
        logging.getLogger("weightzoo").critical("job failed", exc_info=(kind, value, traceback))
        sys.__excepthook__(kind, value, traceback)

    sys.excepthook = log_crash
