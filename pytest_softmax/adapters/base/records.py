"""What a per-layer probe returns, in framework-neutral terms.

An adapter that can look inside its model (see ``ModelAdapter.probe``) runs
one batch and returns a :class:`ProbeResult`: one :class:`LayerRecord` per
layer call, in the order the calls finished (so a nested model comes after
the layers inside it), each with the layer's static description
(:class:`LayerSite`) and its output as a numpy array.  The diagnosis rules
(:mod:`pytest_softmax.core.diagnosis`) and the internal-site check
(:mod:`pytest_softmax.core.sites`) read only these types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .arrays import as_float64, is_float, nonfinite_count, row_sum_errors

# Layer kinds the diagnosis treats specially.
SOFTMAX = "softmax"          # a Softmax layer, Activation('softmax'), Dense(..., activation='softmax')
RECURRENT = "recurrent"      # an RNN layer (its activation is applied inside the cell)
PASSTHROUGH = "passthrough"  # shape-only or inactive in inference: looked through
CONTAINER = "container"      # a nested model used as a layer
OTHER = "other"

# What a layer variable is for, as the adapter knows it: the diagnosis reads
# the values of such variables for the reason a layer made NaN.
VARIANCE_STATISTIC = "variance statistic"  # stored statistics under a square root (moving_variance)
POSITIVE_PARAMETER = "positive parameter"  # a scale or temperature, meant > 0 (under a log, root or division)


@dataclass(frozen=True)
class LayerSite:
    """One layer call, as the diagnosis needs to know it.

    ``path`` names the layer inside nested models (``outer/head/inner_lstm``);
    ``producers`` are the paths of the layer calls (or ``input 'name'``)
    whose outputs fed this call.  ``softmax_axes`` is set for softmax sites:
    the axes the layer normalizes over, as written in the model (negative
    axes allowed).  ``gated`` marks recurrent layers whose cell gates or
    interpolates its activation (LSTM, GRU, ConvLSTM), unlike SimpleRNN.
    ``masked`` says the call received a mask: a ``Softmax`` then writes zeros
    for rows the mask hides entirely."""

    path: str
    name: str
    layer_class: str
    kind: str
    activation: str | None = None
    softmax_axes: tuple[int, ...] | None = None
    gated: bool = False
    masked: bool = False
    dtype: str = ""
    producers: tuple[str, ...] = ()
    function: str = ""  # the wrapped function of a Lambda, for messages
    # The static output shape, batch included (None: variable), when known:
    # it tells a softmax over a fixed size-1 axis from a variable length of 1.
    shape: tuple[int | None, ...] | None = None
    # Adapters that record softmax *calls* rather than layers (PyTorch) say
    # how the call is written (``F.softmax(dim=0)``) and where, in the user's
    # code (``model.py:12``), so that messages and fixes can quote them.
    call: str = ""
    location: str = ""
    # Axis 0 of the output is the batch (always, for a Keras layer; for a
    # PyTorch tensor when its first size is the batch's): a softmax over it
    # is never right.
    batch_first: bool = True

    @property
    def is_softmax_site(self) -> bool:
        return self.kind == SOFTMAX

    @property
    def is_log_softmax(self) -> bool:
        return self.activation == "log_softmax"

    def described(self) -> str:
        """The class, then the call and where it is when known:
        ``MultiheadAttention: F.softmax(dim=-1) at model.py:12``."""
        if not self.call:
            return self.layer_class
        where = f" at {self.location}" if self.location else ""
        return f"{self.layer_class}: {self.call}{where}"

    def describe_activation(self) -> str:
        """``softmax axis -1``, ``linear``, ``lambda naive``... for the table."""
        if self.softmax_axes is not None:
            axes = ",".join(str(a) for a in self.softmax_axes)
            return f"softmax axis {axes}"
        if self.layer_class == "Lambda":
            return f"lambda {self.function}" if self.function else "lambda"
        return self.activation or "-"


@dataclass(frozen=True)
class VariableSummary:
    """What one of a layer's variables holds, in counts: enough for the
    diagnosis to name a NaN or Inf entry, a negative variance statistic or
    a scale that is not positive.  ``role`` is what the adapter knows the
    variable is for (``VARIANCE_STATISTIC``, ``POSITIVE_PARAMETER``, or
    "" for an ordinary weight)."""

    name: str
    size: int
    nan: int = 0
    inf: int = 0
    negative: int = 0  # finite values below 0
    zero: int = 0
    minimum: float = float("nan")  # the smallest finite value
    role: str = ""

    @property
    def nonfinite(self) -> int:
        return self.nan + self.inf


@dataclass
class LayerRecord:
    """A layer call and what it produced on the probed batch."""

    site: LayerSite
    output: np.ndarray | None
    # What the softmax inside this call was fed (a Softmax layer's, a
    # keras.ops.softmax in a custom layer's call(), or the argument of the
    # exp() of a hand-written exp(x) / sum(exp(x))), when the probe could see
    # it: the diagnosis reads its rows (all -inf: every position masked).
    # ``softmax_op`` says which: "softmax" (normalized over the last axis of
    # ``softmax_input``) or "exp".
    softmax_input: np.ndarray | None = None
    softmax_op: str = ""
    # The layer's own variables as they were when it ran (filled by the
    # probe that explains a failure; empty elsewhere).
    variables: tuple[VariableSummary, ...] = ()

    @property
    def nonfinite(self) -> int:
        return 0 if self.output is None else nonfinite_count(self.output)

    @property
    def infinite(self) -> int:
        """How many values are +/-Inf (as opposed to NaN): a division by zero
        makes Inf, a hand-written exp(x) / sum(exp(x)) makes Inf / Inf = NaN."""
        if self.output is None or not is_float(self.output.dtype):
            return 0
        return int(np.isinf(as_float64(self.output)).sum())

    @property
    def max_abs(self) -> float:
        if self.output is None or self.output.size == 0:
            return 0.0
        values = as_float64(self.output)
        finite = values[np.isfinite(values)]
        return float(np.abs(finite).max()) if finite.size else float("nan")

    def sum_error(self, axis: int | Sequence[int]) -> float:
        """Worst |sum - 1| of the output over ``axis`` (NaN if the output
        has no such axis); rows holding NaN/Inf are left out."""
        if self.output is None or self.output.ndim < 2:
            return float("nan")
        axes = normalize_axes(axis, self.output.ndim)
        if axes is None or 0 in axes:
            return float("nan")
        errors = row_sum_errors(self.output, axes)
        errors = errors[np.isfinite(errors)]
        return float(errors.max()) if errors.size else float("nan")


@dataclass
class ProbeResult:
    """Every layer call on one batch, plus which record produced each model
    output (``None`` where the probe could not tell)."""

    records: list[LayerRecord]
    output_producers: list[str | None]
    inputs_finite: bool = True
    input_max_abs: dict[str, float] = field(default_factory=dict)  # by producer name, e.g. "input 'x'"
    input_dtypes: dict[str, str] = field(default_factory=dict)  # by producer name, as above
    limitations: list[str] = field(default_factory=list)
    # Which framework's words the diagnosis fixes are phrased in.
    framework: str = "keras"

    def by_path(self) -> dict[str, LayerRecord]:
        return {r.site.path: r for r in self.records}


def normalize_axes(axis: int | Sequence[int], ndim: int) -> tuple[int, ...] | None:
    """Axes as non-negative, sorted ints, or ``None`` when out of range."""
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    out = []
    for a in axes:
        if not -ndim <= int(a) < ndim:
            return None
        out.append(int(a) % ndim)
    return tuple(sorted(set(out)))
