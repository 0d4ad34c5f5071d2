"""The per-layer metric registry: one ``Metric`` per quantity, declared once where it is computed.

Everything that uses per-layer metrics iterates over this table: the per-trial features
(``analysis.features``), the claims that a metric differs by accuracy group and correlates with accuracy
(``analysis.claims``), the findings page and the data-format docs (``markdown_table``). Adding a metric is
one ``register(Metric(...))`` call in the module that computes it (``moments``, ``spectral``).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Family:
    """Metrics stored together: variable ``variable`` of the features file, dims (trial, layer, ``dim``)."""

    name: str
    variable: str
    dim: str
    network: bool
    """Whether the family is also computed on the whole network (all weight matrices of a trial together)."""
    description: str


@dataclass(frozen=True)
class Metric:
    """One per-layer metric: ``compute`` maps a ``LayerValues`` (a block of trials) to one value per trial."""

    name: str
    family: str
    long_name: str
    units: str
    compute: Callable
    label: str = ""
    """Short phrase for sentences ('weight std'); the long name when empty."""
    direction: int = 0
    """Expected sign of the association with accuracy (-1: lower in better networks), 0 for none stated."""
    source: str = ""
    """Where the expected direction comes from."""
    claim: int | None = None
    """Claim number of the test 'differs between accuracy groups / correlates with accuracy', if tested."""
    valid: str | None = None
    """Name of a metric of the same family that is nonzero where this one can be trusted (else NaN in claims)."""

    @property
    def text(self) -> str:
        return self.label or self.long_name


FAMILIES: dict[str, Family] = {}
METRICS: dict[str, Metric] = {}


def register_family(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"metric family {family.name!r} is registered twice")
    FAMILIES[family.name] = family
    return family


def register(metric: Metric) -> Metric:
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    if metric.family not in FAMILIES:
        raise ValueError(f"metric {metric.name!r}: unknown family {metric.family!r}; known: {', '.join(FAMILIES)}")
    if metric.claim is not None and any(m.claim == metric.claim for m in METRICS.values()):
        raise ValueError(f"metric {metric.name!r}: claim {metric.claim} already belongs to another metric")
    METRICS[metric.name] = metric
    return metric


def family_metrics(family: str) -> list[Metric]:
    """The metrics of one family, in registration order (the order of the stored ``dim`` coordinate)."""
    return [m for m in METRICS.values() if m.family == family]


def claim_metrics() -> list[Metric]:
    """Metrics tested as claims, by claim number."""
    return sorted((m for m in METRICS.values() if m.claim is not None), key=lambda m: m.claim)


def direction_word(metric: Metric, higher: str = "higher", lower: str = "lower") -> str:
    return lower if metric.direction < 0 else higher


def markdown_table() -> str:
    """The registry as the Markdown table of docs/data-format.md (a test keeps the two equal)."""
    lines = ["| variable | `dim` value | long name | units | expected with accuracy | claim |",
             "|---|---|---|---|---|---|"]
    for family in FAMILIES.values():
        for m in family_metrics(family.name):
            expected = {-1: "lower", 1: "higher"}.get(int(np.sign(m.direction)), "–")
            if m.source:
                expected += f" ({m.source})"
            long_name = m.long_name.replace("|", "\\|")  # a bar would end the Markdown cell
            lines.append(f"| `{family.variable}` | `{m.name}` | {long_name} | {m.units} | {expected} | "
                         f"{m.claim if m.claim is not None else '–'} |")
    return "\n".join(lines)
