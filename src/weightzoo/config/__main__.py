"""``python -m weightzoo.config FILE...``: every check of the workflow on config files, without Snakemake."""

import sys

from weightzoo.config.schema import main

sys.exit(main())
