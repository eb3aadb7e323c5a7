"""What a check found, as plain data, and how it reads in a test log.

Standard library only: a report must be printable, comparable and
serialisable (for the terminal summary, JSON and junit) without importing
numpy or TensorFlow.  Text layout is part of the product: the first line says
what broke, where, by how much and against which tolerance; the lines below
give the details.  Keep it stable, users grep CI logs for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NOT_FINITE = "not finite"
OUT_OF_RANGE = "out of range"
NOT_NORMALIZED = "not normalized"
MODEL_RAISED = "model raised"
GIVEN_INPUT = "(the inputs= you passed)"


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
    rows: int = 0
    worst_error: float = 0.0
    nonfinite: int = 0
    out_of_range: int = 0
    unnormalized_rows: int = 0
    min_value: float = 0.0
    max_value: float = 0.0

    @property
    def tolerance(self) -> float:
        return self.atol + self.rtol

    @property
    def passed(self) -> bool:
        return not (self.nonfinite or self.out_of_range or self.unnormalized_rows)

    @property
    def where(self) -> str:
        return f"output {self.output!r} ({self.layer_name}: {self.layer_class})"


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

    def headline(self) -> str:
        where = f"output {self.output!r} ({self.layer_name}: {self.layer_class})"
        if self.site:
            where = f"internal softmax {self.site!r} ({self.layer_class})"
        context = f"[{self.dtype}, axis {self.axis}, {self.n_classes} classes]"
        if self.kind == NOT_NORMALIZED:
            detail = f"max |sum - 1| = {self.error:.4g} > tolerance {self.tolerance:.3g}"
        elif self.kind == NOT_FINITE:
            detail = f"{int(self.error)} NaN/Inf values in {self.rows_violating} of {self.rows} rows"
        elif self.kind == OUT_OF_RANGE:
            detail = f"values outside [0, 1] by up to {self.error:.4g} > tolerance {self.tolerance:.3g}"
        else:
            return f"model raised on a generated input: {self.message}"
        return f"{where} is {self.kind}: {detail} {context}"


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


LAYER_TABLE_HEADER = ("layer", "class", "activation", "max |sum - 1|", "non-finite", "verdict")


def layer_table(layers: list[LayerResult]) -> list[str]:
    """The table as aligned plain-text lines (no trailing spaces)."""
    rows = [LAYER_TABLE_HEADER] + [
        (r.path, r.layer_class, r.activation, "-" if r.worst_error != r.worst_error else f"{r.worst_error:.3g}",
         str(r.nonfinite), r.verdict)
        for r in layers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LAYER_TABLE_HEADER) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip() for row in rows]


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
    diagnosis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layers: list[LayerResult] = field(default_factory=list)

    @property
    def headline(self) -> str:
        if self.violations:
            return f"softmax invariant violated: {self.violations[0].headline()}"
        checked = ", ".join(o.output for o in self.outputs)
        return (
            f"softmax invariant holds for {self.model_name}: outputs {checked}; "
            f"max |sum - 1| = {self.worst_error:.3g} <= tolerance {self.tolerance:.3g} "
            f"[{self.dtype}] over {self.rows} rows in {self.examples} examples"
        )

    def __str__(self) -> str:
        lines = [self.headline]
        for extra in self.violations[1:]:
            lines.append(f"  also: {extra.headline()}")
        lines.extend(f"  {line}" for line in self.diagnosis)
        if self.layers:
            lines.append("  layers examined (on the failing input):")
            lines.extend(f"    {line}" for line in layer_table(self.layers))
        if self.violations:
            first = self.violations[0]
            if first.kind != MODEL_RAISED:
                lines.append(
                    f"  rows violating: {first.rows_violating} of {first.rows} in the failing batch; "
                    f"{self.rows} rows checked in {self.examples} examples"
                )
                if first.worst_row:
                    values = ", ".join(f"{v:.4g}" for v in first.worst_row_values)
                    more = ", ..." if len(first.worst_row_values) < first.n_classes else ""
                    lines.append(
                        f"  worst row {list(first.worst_row)}: sum = {first.worst_row_sum:.6g}; "
                        f"values [{values}{more}]"
                    )
        if self.failing_input:
            given = all(item.rebuild == GIVEN_INPUT for item in self.failing_input)
            lines.append("  failing input (from inputs=):" if given else "  failing input (shrunk by Hypothesis):")
            for item in self.failing_input:
                lines.append(
                    f"    {item.name}: {item.dtype} {list(item.shape)}, {item.description}; "
                    f"values in [{item.min_value:.4g}, {item.max_value:.4g}]"
                )
                lines.append(f"      rebuild: {item.rebuild}")
        if self.replay:
            lines.append(f"  replay: {self.replay}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if not self.violations and self.outputs:
            for out in self.outputs:
                lines.append(
                    f"  {out.where}: {out.dtype}, axis {out.axis}, {out.n_classes} classes, "
                    f"max |sum - 1| = {out.worst_error:.3g}, tolerance {out.tolerance:.3g}"
                )
        return "\n".join(lines)


class SoftmaxInvariantError(AssertionError):
    """Raised by :func:`check_softmax` when an output is not a distribution;
    ``.report`` holds the :class:`SoftmaxReport`."""

    def __init__(self, report: SoftmaxReport) -> None:
        super().__init__(str(report))
        self.report = report


class SoftmaxSetupError(Exception):
    """The check could not start: no usable model, inputs or outputs.  The
    message names the thing at fault and how to fix it."""
