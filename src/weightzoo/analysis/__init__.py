"""Pure analysis functions over gathered zoo datasets (see docs/data-format.md)."""
