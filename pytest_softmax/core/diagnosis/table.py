"""The "layers examined" table of a diagnosis, and how layers are named."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

from ...adapters.base.records import RECURRENT, LayerRecord
from ..report import LayerResult

MAX_TABLE_ROWS = 14


class LayerTable:
    """The layers examined, in execution order, each with one verdict."""

    def __init__(self, by_path: dict[str, LayerRecord], axis: int, tolerance: float) -> None:
        self.order = {path: i for i, path in enumerate(by_path)}
        self.axis, self.tolerance = axis, tolerance
        self.entries: dict[str, LayerResult] = {}

    @property
    def seen(self) -> set[str]:
        return set(self.entries)

    def add(self, record: LayerRecord, verdict: str) -> None:
        if record.site.path in self.entries:
            return
        axes = record.site.softmax_axes if record.site.is_softmax_site else self.axis
        self.entries[record.site.path] = LayerResult(
            path=record.site.path, layer_class=record.site.described(), activation=_activation_text(record),
            worst_error=record.sum_error(axes if axes is not None else self.axis), nonfinite=record.nonfinite,
            verdict=verdict,
        )

    @property
    def rows(self) -> list[LayerResult]:
        ordered = sorted(self.entries.values(), key=lambda r: self.order.get(r.path, 0))
        return ordered[:MAX_TABLE_ROWS]


def _activation_text(record: LayerRecord) -> str:
    text = record.site.describe_activation()
    return f"{text} (in cell)" if record.site.kind == RECURRENT and record.site.activation else text


def layer_name(record: LayerRecord) -> str:
    site = record.site
    if site.call:  # a recorded call: the module path, then the call and where it is
        return f"{site.layer_class} {site.path!r} ({site.call}{f' at {site.location}' if site.location else ''})"
    return f"{site.layer_class} {site.path!r}"


def axes_text(record: LayerRecord) -> str:
    axes = record.site.softmax_axes or (-1,)
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def within(error: float, tolerance: float) -> bool:
    return not math.isnan(error) and error <= tolerance


def upstream(start: LayerRecord, by_path: dict[str, LayerRecord]) -> Iterator[LayerRecord]:
    """The layer calls that fed ``start``, directly or not, nearest first."""
    queue, seen = deque(start.site.producers), set()
    while queue:
        path = queue.popleft()
        if path in seen or path not in by_path:
            continue
        seen.add(path)
        record = by_path[path]
        yield record
        queue.extend(record.site.producers)
