"""Checking the softmax sites *inside* a model, not only its outputs.

Every ``Softmax`` layer, ``Activation('softmax')`` and non-recurrent layer
with ``activation='softmax'`` must produce distributions along its own
axes.  One exception: Keras' ``Softmax`` writes zeros for a row that the
model's own mask hides entirely, so an all-zero row of a site that was
called with a mask is skipped (a real softmax never yields an all-zero row:
its largest entry is at least 1/n).  NaN is never excused.

Cost: the check is only switched on for models that have softmax sites
other than their outputs; the search then runs one traced function that
returns the outputs *and* the site outputs in the same pass, instead of the
plain forward, so no example is computed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..adapters.base import LayerProbing, ModelAdapter
from ..settings import CheckSettings
from ..tolerance import normalize_dtype_name
from ..adapters.base.arrays import as_float64, is_float
from .invariants import check_batch, violations_of
from ..adapters.base.records import LayerRecord, LayerSite, normalize_axes
from .report import Violation
from .single_element import fixed_single_element, single_element_violation


@dataclass
class SiteChecker:
    """Runs the model with its softmax sites exposed and checks each site."""

    adapter: LayerProbing
    settings: CheckSettings
    worst: dict[str, float] = field(default_factory=dict)

    def forward(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[Violation], float]:
        outputs, records = self.adapter.forward_with_sites(inputs)
        found: list[Violation] = []
        severity = 0.0
        for record in records:
            violations, record_severity = self.check(record)
            found.extend(violations)
            severity = max(severity, record_severity)
        return outputs, found, severity

    def check(self, record: LayerRecord) -> tuple[list[Violation], float]:
        site, output = record.site, record.output
        # A site whose values are not real floats (complex, integer) is not a
        # distribution to measure; the outputs the user asked for still are.
        if output is None or site.softmax_axes is None or output.ndim < 2 or not is_float(output.dtype):
            return [], 0.0
        axes = normalize_axes(site.softmax_axes, output.ndim)
        if axes is None:
            return [], 0.0
        dtype = normalize_dtype_name(output.dtype)
        if site.is_log_softmax:  # log-probabilities: exp() of each row is the distribution
            output = np.exp(as_float64(output))
        if 0 in axes and site.batch_first:
            # Axis 0 is the batch: its "rows" mix independent examples, so no
            # distribution is normalized there.  Judge the rows the call should
            # have normalized (the last axis), which fail unless by chance.
            axes = (output.ndim - 1,)
        # Put the site's axes last and merge them: one row per distribution.
        values = np.moveaxis(as_float64(output), axes, range(output.ndim - len(axes), output.ndim))
        rows = values.reshape(-1, int(np.prod(values.shape[output.ndim - len(axes):])))
        n_classes = rows.shape[-1]
        if n_classes == 1 and fixed_single_element(site.shape, axes, output.shape):
            return self._single_element(site, output, axes)
        if site.masked:
            rows = rows[~np.all(rows == 0.0, axis=-1)]
        result = check_batch(rows, -1, self.settings.tolerance_for(dtype, n_classes))
        if np.isfinite(result.worst_error):
            self.worst[site.path] = max(self.worst.get(site.path, 0.0), result.worst_error)
        violations = violations_of(
            result, rows, axis=-1, name=site.path, layer_name=site.path, layer_class=site.described(), dtype=dtype,
        )
        axis = site.softmax_axes[0] if len(site.softmax_axes) == 1 else -1
        return [_as_site(v, site.path, axis) for v in violations], result.severity

    @staticmethod
    def _single_element(site: LayerSite, output: np.ndarray, axes: Sequence[int]) -> tuple[list[Violation], float]:
        """A softmax over an axis the model fixes to one element: always 1.
        (A variable length that happens to be 1 is checked like any other.)"""
        axis = site.softmax_axes[0] if site.softmax_axes and len(site.softmax_axes) == 1 else -1
        violation = single_element_violation(
            output=site.path, layer_name=site.path, layer_class=site.layer_class,
            dtype=normalize_dtype_name(output.dtype), axis=axis, rows=int(output.shape[0]), site=site.path,
            static_shape=site.shape, axes=axes, actual_shape=output.shape,
        )
        return [violation], float("inf")

    def notes(self) -> list[str]:
        if not self.worst:
            return []
        worst = max(self.worst.values())
        return [(f"internal softmax sites checked along their own axes: {len(self.worst)} "
                 f"({', '.join(self.worst)}), max |sum - 1| = {worst:.3g}")]


def _as_site(violation: Violation, path: str, axis: int) -> Violation:
    return replace(violation, site=path, axis=axis, worst_row=(), worst_row_values=())


def site_checker(adapter: ModelAdapter, settings: CheckSettings) -> SiteChecker | None:
    """A checker when the model has softmax sites besides its outputs, else
    ``None`` (the search then uses the plain forward pass)."""
    if not isinstance(adapter, LayerProbing):
        return None
    try:
        if not adapter.internal_softmax_sites():
            return None
    except Exception:  # noqa: BLE001 - a model the probe cannot read: the outputs are still checked
        return None
    return SiteChecker(adapter, settings)
