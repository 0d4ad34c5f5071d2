"""``python -m weightzoo.export ZOO.nc [ZOO.nc ...] --out DIR [--canonical]``: zoos in the Small CNN Zoo layout.

A command on the user's files, outside the workflow: a damaged input is named as such and left where it is (a
workflow job would move it aside for the next run to remake), and every known failure is one line on stderr."""

import argparse
import sys

from weightzoo.export.write import export_zoos
from weightzoo.io.atomic import ReportedError, damaged_files_left_in_place, netcdf_problem


def damaged_input(paths) -> str:
    """The first of ``paths`` that cannot be read back in full, as the line to print; "" when all can."""
    for path in paths:
        problem = netcdf_problem(path)
        if problem and not problem.startswith("FileNotFoundError"):
            return (f"error: damaged input {path}: it cannot be read in full ({problem}); it is damaged or not a "
                    f"netCDF zoo file. It was left as it is and nothing was exported. A zoo of the workflow is made "
                    f"again by moving it aside ({path}.damaged) and rerunning snakemake")
    return ""


def failure(err: Exception, zoos, out) -> str | None:
    """The line to print for an export that raised ``err``; None for an error that is not the user's (a bug)."""
    # the export's own checks name their zoo (or "export:"): no need to read every input in full for them
    checked = type(err) is ValueError and str(err).startswith((*map(str, zoos), "export:"))
    found = "" if checked else damaged_input(zoos)  # a read error inside the write of weights.npy is no disk problem
    if found:
        return found
    if isinstance(err, (ReportedError, ValueError)):
        return f"error: {err}"
    if isinstance(err, OSError):
        return f"error: cannot write the export to {out}: {err.strerror or err}; choose a folder you can write (--out)"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weightzoo.export", description=(
        "Write zoo files (one model, the same parameter shapes) as weights.npy, metrics.csv, layout.csv and "
        "export.json in the Small CNN Zoo layout (docs/export.md)."))
    parser.add_argument("zoos", nargs="+", help="gathered zoo files (results/zoo/{model}/{dataset}/{arch}.nc)")
    parser.add_argument("--out", required=True, help="export folder (created; its files are replaced)")
    parser.add_argument("--canonical", action="store_true",
                        help="sort each network's hidden units by node strength (chains of Linear/Conv2d layers)")
    args = parser.parse_args(argv)
    try:
        with damaged_files_left_in_place():
            export_zoos(args.zoos, args.out, canonical=args.canonical)
    except Exception as err:  # noqa: BLE001 - known failures become one line; anything else re-raised below
        with damaged_files_left_in_place():
            message = failure(err, args.zoos, args.out)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    print(f"exported {len(args.zoos)} zoo(s) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
