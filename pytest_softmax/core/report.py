"""What a check found, as plain data.

Standard library only: a report must be printable, comparable and
serialisable (for the terminal summary, JSON and junit) without importing
numpy or a framework.  How it reads is :mod:`pytest_softmax.core.render`'s
business.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..adapters.base import output_label
from .kinds import GIVEN_INPUT


@dataclass(frozen=True)
class Replay:
    """How the user reruns a check: ``command`` is the pytest command line
    that selects it, or ``None`` for a direct ``check_softmax()`` call."""

    command: str | None = None


# Lower bounds of the bins of a check's row-error histogram, as multiples of
# the tolerance: [0, 1e-6), [1e-6, 1e-5), ... [0.1, 1] and (1, inf).  Log
# spaced so that a passing check shows its margin in decades; a fixed number
# of bins counted per example, so the search keeps a few integers, not rows.
ROW_ERROR_BINS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class OutputResult:
    """The worst the check saw on one model output, over every example."""

    output: str
    layer_name: str
    layer_class: str
    dtype: str
    axis: int
    n_classes: int
    atol: float
    rtol: float
    tolerance: float
    rows: int = 0
    worst_error: float = 0.0
    nonfinite: int = 0
    out_of_range: int = 0
    unnormalized_rows: int = 0
    min_value: float = 0.0
    max_value: float = 0.0
    # Finite rows per bin of ROW_ERROR_BINS (|sum - 1| / tolerance), over
    # every example; () when no row was measured.
    row_error_counts: tuple[int, ...] = ()

    @property
    def passed(self) -> bool:
        return not (self.nonfinite or self.out_of_range or self.unnormalized_rows)

    @property
    def where(self) -> str:
        return output_label(self.output, self.layer_name, self.layer_class)


@dataclass(frozen=True)
class Violation:
    """One way an output broke the invariant, on the (shrunk) failing input."""

    kind: str
    output: str
    layer_name: str
    layer_class: str
    dtype: str
    axis: int
    n_classes: int
    tolerance: float
    error: float
    rows_violating: int
    rows: int
    worst_row: tuple[int, ...] = ()
    worst_row_sum: float = float("nan")
    worst_row_values: tuple[float, ...] = ()
    message: str = ""
    site: str = ""  # set for a softmax site inside the model (its path), not an output


@dataclass(frozen=True)
class InputSummary:
    """A generated input, small enough to print, and how to rebuild it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    description: str
    rebuild: str
    min_value: float
    max_value: float
    # The values the adapter inferred for this input from the model's graph
    # (ids within a vocabulary, a mask); "" when nothing was known.
    domain: str = ""
    # Built by the edge phase (core/inputs/edges.py), not drawn by Hypothesis.
    edge: bool = False

    @property
    def given(self) -> bool:
        return self.rebuild == GIVEN_INPUT


@dataclass(frozen=True)
class LayerResult:
    """One row of the "layers examined" table: a layer the diagnosis looked
    at on the failing input.  ``worst_error`` is NaN where a sum along the
    checked axis means nothing (the layer's output has no such axis)."""

    path: str
    layer_class: str
    activation: str
    worst_error: float
    nonfinite: int
    verdict: str


@dataclass(frozen=True)
class LayerProfile:
    """One layer call of the per-layer chart, on the failing input, in
    execution order: its worst ``|row sum - 1|`` along the checked axis (a
    softmax site's own axes), NaN where the output has no such axis, judged
    against the tolerance of the failing output; how many of its ``values``
    are NaN/Inf; whether it is a softmax site and whether the diagnosis
    blames it."""

    name: str
    layer_class: str
    max_error: float
    tolerance: float
    nonfinite: int
    values: int
    softmax_site: bool = False
    at_fault: bool = False

    @property
    def nonfinite_share(self) -> float:
        return self.nonfinite / self.values if self.values else 0.0

    @property
    def relative_error(self) -> float:
        """``max_error / tolerance`` (NaN when either is unknown)."""
        return self.max_error / self.tolerance if self.tolerance > 0 else float("nan")


@dataclass
class SoftmaxReport:
    """Outcome of :func:`pytest_softmax.check_softmax`."""

    model_name: str
    passed: bool
    examples: int
    rows: int
    worst_error: float
    tolerance: float
    dtype: str
    outputs: list[OutputResult] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    failing_input: list[InputSummary] = field(default_factory=list)
    replay: str = ""
    seed: int | None = None
    duration: float = 0.0
    # Batches of structured edge rows run before the generated examples
    # (and to narrow a failing one down to one row); not in ``examples``.
    edge_batches: int = 0
    diagnosis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layers: list[LayerResult] = field(default_factory=list)
    # "path (Class)" of the layer the diagnosis blames; None: not localized
    # beyond the output (then the output's own layer is reported).
    layer_at_fault: str | None = None
    # The framework backend that ran the model ("tensorflow", "jax", "torch").
    backend: str = ""
    # The cause in a few words, set by the diagnosis rule that fired (e.g.
    # "every position masked: softmax of all -inf"); None: no rule fired.
    cause: str | None = None
    # The fix in one short clause, from the same rule; None: no rule fired.
    fix: str | None = None
    # Every layer call the probe saw on the failing input, in execution
    # order: the data behind the per-layer chart (empty: no probe ran).
    layer_profile: list[LayerProfile] = field(default_factory=list)
    # Where the failing input came from, when neither the test's inputs= nor
    # the search (the batch tried before the search, say).
    failing_input_origin: str = ""

    @property
    def blamed_layer(self) -> str | None:
        """The layer the report blames: the diagnosis' answer, else the
        layer (or internal softmax) where the first violation was seen."""
        if self.passed:
            return None
        if self.layer_at_fault:
            return self.layer_at_fault
        first = self.violations[0] if self.violations else None
        if first is None or not (first.site or first.layer_name):
            return None
        return f"{first.site or first.layer_name} ({first.layer_class})"

    @property
    def fault_line(self) -> str | None:
        """``layer at fault: path (Class) (cause)``: what CI shows right
        after the headline."""
        layer = self.blamed_layer
        if layer is None and not self.cause:
            return None
        cause = f" ({self.cause})" if self.cause else ""
        return f"layer at fault: {layer}{cause}" if layer else f"cause: {self.cause}"

    @property
    def headline(self) -> str:
        from .render import report_headline

        return report_headline(self)

    def __str__(self) -> str:
        from .render import render_report

        return render_report(self)
