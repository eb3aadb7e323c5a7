"""Dtype-aware default tolerance for "rows of a softmax sum to one".

This module is imported when pytest starts (it is part of the plugin), so it
deliberately uses the standard library only: importing numpy or TensorFlow
here would make every pytest run pay their start-up cost, even test sessions
that never touch a model.

The plugin checks ``abs(out.astype(np.float64).sum(axis) - 1) <= tol``.  The
sum is taken in float64, so the only error being judged is the one already
baked into the *stored* output of the softmax.  That error has three sources
(``u = eps / 2`` is the unit round-off of the storage dtype):

* rounding every probability to the storage dtype: ``sum(p_i * d_i)`` with
  ``|d_i| <= u``, i.e. at most ``u`` in total because the ``p_i`` sum to one;
* the relative error of the normaliser ``sum(exp(x_j - max))``.  Every
  probability is divided by the same computed sum, so its relative error
  shows up one-to-one in the row sum.  Library reductions (Eigen's
  vectorised/blocked sums, XLA's tree reductions) grow this error far slower
  than the naive ``n * u`` bound, but it does grow with the number of
  classes;
* for ``exp(x - logsumexp(x))`` formulations (Keras' multi-axis ``Softmax``)
  the absolute error of the computed ``logsumexp`` becomes a relative error
  of every output, again with a term that grows with the number of classes.

Hence the tolerance is ``eps * (a + b * log2(n))``: a constant part for the
per-element rounding and ``exp``/``log`` errors, plus a part growing with the
depth of a tree reduction over ``n`` classes.  The constants are calibrated
by ``benchmarks/calibrate_tolerance.py`` (see ``benchmarks/TOLERANCE.md``).
"""

from __future__ import annotations

import math
import re
from numbers import Integral
from typing import Final

__all__ = [
    "MACHINE_EPSILON",
    "SUPPORTED_DTYPES",
    "TOLERANCE_BASE_EPS",
    "TOLERANCE_LOG2_EPS",
    "default_tolerance",
    "normalize_dtype_name",
]

#: Machine epsilon (distance from 1.0 to the next representable number) of
#: every floating-point storage dtype the plugin knows.  Exact powers of two,
#: written out so that no numpy import is needed to know them.
MACHINE_EPSILON: Final[dict[str, float]] = {
    "float16": 2.0**-10,
    "bfloat16": 2.0**-7,
    "float32": 2.0**-23,
    "float64": 2.0**-52,
}

#: The dtype names accepted by :func:`default_tolerance`, from the most to the
#: least precise... ordered as in :data:`MACHINE_EPSILON` for stable messages.
SUPPORTED_DTYPES: Final[tuple[str, ...]] = tuple(MACHINE_EPSILON)

#: Constant part of the tolerance, in units of machine epsilon.
TOLERANCE_BASE_EPS: Final[float] = 8.0

#: Part of the tolerance per doubling of the number of classes, in eps units.
TOLERANCE_LOG2_EPS: Final[float] = 4.0

# Spellings other libraries use for the same storage formats.  Kept small on
# purpose: an unknown name must fail loudly rather than be guessed at.
_ALIASES: Final[dict[str, str]] = {
    "half": "float16",
    "f2": "float16",
    "single": "float32",
    "f4": "float32",
    "double": "float64",
    "f8": "float64",
    "bf16": "bfloat16",
    "fp16": "float16",
    "fp32": "float32",
    "fp64": "float64",
}

# Matches the quoted name in TensorFlow's ``repr``: ``<dtype: 'float16'>``.
_QUOTED_NAME: Final[re.Pattern[str]] = re.compile(r"""['"]([A-Za-z0-9_]+)['"]""")


def normalize_dtype_name(dtype: object) -> str:
    """Return the canonical name (a key of :data:`MACHINE_EPSILON`) of *dtype*.

    Accepts whatever a user or a framework is likely to hand over, without
    importing that framework: plain strings (``"float32"``, ``"<f4"``,
    ``"<dtype: 'float16'>"``), numpy dtypes and scalar types, TensorFlow /
    Keras / ml_dtypes dtypes, or any object with a string ``.name``.  We only
    look at names because comparing against the real dtype objects would
    require importing their libraries at pytest start-up.

    Raises:
        ValueError: if the dtype is not one of :data:`SUPPORTED_DTYPES`; the
            message names both the offending dtype and the supported ones, so
            a user who passed ``int32`` output knows what went wrong.
    """
    candidates: list[str] = []
    if isinstance(dtype, str):
        candidates.append(dtype)
    else:
        name = getattr(dtype, "name", None)
        if isinstance(name, str):
            candidates.append(name)
        if isinstance(dtype, type):
            # numpy scalar types such as ``np.float32`` have no ``.name``.
            candidates.append(dtype.__name__)
        candidates.append(str(dtype))

    for raw in candidates:
        text = raw.strip()
        quoted = _QUOTED_NAME.search(text)
        if quoted is not None:
            text = quoted.group(1)
        # "torch.float32" / "tf.float32" -> "float32"; "<f4" -> "f4".
        text = text.rsplit(".", 1)[-1].lstrip("<>=|").lower()
        text = _ALIASES.get(text, text)
        if text in MACHINE_EPSILON:
            return text

    raise ValueError(
        f"unsupported dtype {dtype!r} for a softmax tolerance; "
        f"supported dtypes are: {', '.join(SUPPORTED_DTYPES)}"
    )


def default_tolerance(dtype: object, n_classes: int) -> float:
    """Default absolute tolerance on ``|row sum - 1|`` for a softmax output.

    ``eps * (TOLERANCE_BASE_EPS + TOLERANCE_LOG2_EPS * log2(n_classes))``
    where ``eps`` is the machine epsilon of the dtype the softmax result is
    *stored* in (for mixed precision that is the float16 compute dtype).

    Why this shape: the error of a correct softmax row sum is dominated by
    the relative error of its normaliser (a reduction over ``n_classes``
    terms, whose error grows with the reduction depth, ``~log2(n)``) plus an
    ``n``-independent part from rounding each output and from ``exp``/``log``.
    A tolerance proportional to ``eps`` is meaningless across dtypes otherwise:
    ``1e-6`` is 8 ulps in float32 but a thousandth of an ulp in float16.

    Raises:
        ValueError: for an unsupported dtype or ``n_classes < 1``.
        TypeError: if ``n_classes`` is not an integer.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral):
        raise TypeError(
            f"n_classes must be an integer, got {type(n_classes).__name__} "
            f"{n_classes!r}"
        )
    if n_classes < 1:
        raise ValueError(
            f"n_classes must be >= 1 (the size of the softmax axis), got {n_classes}"
        )
    eps = MACHINE_EPSILON[normalize_dtype_name(dtype)]
    return eps * (TOLERANCE_BASE_EPS + TOLERANCE_LOG2_EPS * math.log2(int(n_classes)))
