"""``python -m weightzoo.export ZOO.nc [ZOO.nc ...] --out DIR [--canonical]``: zoos in the Small CNN Zoo layout."""

import argparse
import sys

from weightzoo.export.write import export_zoos


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
        export_zoos(args.zoos, args.out, canonical=args.canonical)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported {len(args.zoos)} zoo(s) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
