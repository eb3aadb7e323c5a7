"""Dtype-aware default tolerance for "rows of a softmax sum to one".

This module is imported when pytest starts (it is part of the plugin), so it
uses the standard library only: importing numpy or TensorFlow here would make
every pytest run pay their start-up cost, including sessions that never touch
a model.

The plugin checks ``abs(out.astype(np.float64).sum(axis) - 1) <= tol``.  The
sum is taken in float64, so the only error being judged is the one already
baked into the *stored* output.  Error model (``eps_out``: machine epsilon of
the storage dtype; ``eps_acc``: that of the dtype the normaliser is
accumulated in, float32 for 16-bit outputs and the storage dtype otherwise):

* rounding every probability to the storage dtype costs at most
  ``eps_out / 2`` in total (the rounding errors are weighted by ``p_i``,
  which sum to one); 16-bit kernels that also round an intermediate (the
  normaliser, the logits) reach ~1.6 ``eps_out``;
* every probability is divided by the same computed normaliser
  ``S = sum(exp(x_j - max x))``, so the relative error of ``S`` appears
  one-to-one in the row sum.  It has a constant part (``exp``, the division)
  and a summation part.  Measured summation error grows *linearly* in ``n``
  (it is a systematic bias -- small terms added to a large accumulator round
  the same way -- not a random walk), like the classical ``(n-1) u`` bound
  but a few hundred times smaller in practice;
* TensorFlow, XLA and Keras accumulate float16/bfloat16 reductions in
  float32, so for 16-bit outputs the growing term is in float32 eps and is
  negligible: correct 16-bit softmaxes stay within ~1.6 eps at any ``n``.

Hence ``tol = eps_out * A + eps_acc * (B + n / C)``; A, B, C are calibrated
by ``benchmarks/calibrate_tolerance.py`` with a >= 4x safety margin (see
``benchmarks/TOLERANCE.md``).

``exp(x - logsumexp(x))`` formulations (Keras' multi-axis ``Softmax``) have an
extra error that depends on the *logits*, not on ``n``: the computed
``logsumexp`` is rounded to the storage dtype, an absolute error of up to
``eps_out * |logsumexp| / 2`` that becomes a relative error of every output.
No ``(dtype, n)`` tolerance can cover it tightly (bfloat16 rows with logits
around 300 sum to ~2), so it is added only when the caller supplies the
logit magnitude (``max_abs_logit``).
"""

from __future__ import annotations

import math
import re
from numbers import Integral, Real
from typing import Final

__all__ = [
    "CLASSES_PER_EPS",
    "KERNEL_EPS",
    "LOGSUMEXP_SAFETY",
    "MACHINE_EPSILON",
    "OUTPUT_ROUNDING_EPS",
    "SUPPORTED_DTYPES",
    "accumulation_dtype",
    "default_tolerance",
    "normalize_dtype_name",
]

#: Machine epsilon (gap between 1.0 and the next representable number) of
#: each floating-point storage dtype the plugin knows.  Exact powers of two,
#: written out so that no numpy import is needed to know them.
MACHINE_EPSILON: Final[dict[str, float]] = {
    "float16": 2.0**-10,
    "bfloat16": 2.0**-7,
    "float32": 2.0**-23,
    "float64": 2.0**-52,
}

#: The dtype names :func:`default_tolerance` accepts.
SUPPORTED_DTYPES: Final[tuple[str, ...]] = tuple(MACHINE_EPSILON)

#: A: n-independent error in units of the *storage* epsilon.  Plain 16-bit
#: softmaxes stay below 0.9 eps; the worst observed is 1.58 eps
#: (mixed_float16 Dense(softmax) under XLA, 128k classes); 8 gives > 5x.
OUTPUT_ROUNDING_EPS: Final[float] = 8.0

#: B: n-independent error in units of the *accumulation* epsilon (exp,
#: division).  Worst observed ~7 eps (float64 at n = 100..1000); A + B = 30
#: gives a > 4x margin for float32/float64 (where both eps are the same).
KERNEL_EPS: Final[float] = 22.0

#: C: the normaliser's summation error grows by one accumulation epsilon per
#: this many classes.  Worst observed: 23 / 55 / 202 eps at n = 10k / 32k /
#: 128k (float32, XLA, normal logits of std 3-4), one eps per ~430-630
#: classes; 128 gives a >= 4.6x margin.
CLASSES_PER_EPS: Final[float] = 128.0

#: Safety factor on the logsumexp rounding bound ``(|logsumexp| + 1) / 2``
#: storage eps, used only when ``max_abs_logit`` is given.
LOGSUMEXP_SAFETY: Final[float] = 4.0

# Spellings other libraries use for the same storage formats.  Kept small on
# purpose: an unknown name must fail loudly rather than be guessed at.
_ALIASES: Final[dict[str, str]] = {
    "half": "float16",
    "f2": "float16",
    "fp16": "float16",
    "single": "float32",
    "f4": "float32",
    "fp32": "float32",
    "double": "float64",
    "f8": "float64",
    "fp64": "float64",
    "bf16": "bfloat16",
}

# The quoted name in TensorFlow's repr, ``<dtype: 'float16'>``.
_QUOTED_NAME: Final[re.Pattern[str]] = re.compile(r"""['"]([A-Za-z0-9_]+)['"]""")


def normalize_dtype_name(dtype: object) -> str:
    """Return the canonical name (a key of :data:`MACHINE_EPSILON`) of *dtype*.

    Accepts what a user or a framework is likely to hand over -- plain strings
    (``"float32"``, ``"<f4"``, ``"<dtype: 'float16'>"``), numpy dtypes and
    scalar types, TensorFlow / Keras / ml_dtypes dtypes, or any object with a
    string ``.name`` -- by looking at names only, because comparing with the
    real dtype objects would mean importing their libraries at pytest
    start-up.

    Raises:
        ValueError: if the dtype is not one of :data:`SUPPORTED_DTYPES`.  The
            message names the offending dtype and the supported ones, so that
            a user whose model returns ``int32`` sees what went wrong.
    """
    candidates: list[str] = []
    if isinstance(dtype, str):
        candidates.append(dtype)
    else:
        name = getattr(dtype, "name", None)
        if isinstance(name, str):
            candidates.append(name)
        if isinstance(dtype, type):
            # numpy scalar types such as ``np.float32`` have no string ``.name``.
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


def accumulation_dtype(dtype: object) -> str:
    """Dtype in which frameworks accumulate the softmax normaliser for *dtype*.

    TensorFlow (eager kernels and XLA) and Keras sum float16/bfloat16 tensors
    in float32; measured 16-bit softmax errors do not grow with the number
    of classes up to 128,000.  Wider dtypes are accumulated in themselves.
    """
    name = normalize_dtype_name(dtype)
    return "float32" if MACHINE_EPSILON[name] > MACHINE_EPSILON["float32"] else name


def default_tolerance(dtype: object, n_classes: int, *, max_abs_logit: float | None = None) -> float:
    """Default absolute tolerance on ``|row sum - 1|`` of a softmax output.

    ``eps_out * A + eps_acc * (B + n_classes / C)`` where ``eps_out`` is the
    machine epsilon of the dtype the result is *stored* in (float16 for a
    ``mixed_float16`` policy) and ``eps_acc`` that of
    :func:`accumulation_dtype`.  A tolerance must scale with eps: ``1e-6`` is
    8 ulps in float32 but a thousandth of an ulp in float16.  See the module
    docstring for the error model and the constants for their calibration.

    Args:
        dtype: storage dtype of the softmax output (anything accepted by
            :func:`normalize_dtype_name`).
        n_classes: number of elements each distribution is spread over (the
            product of the sizes of all softmax axes).
        max_abs_logit: only for ``exp(x - logsumexp(x))`` formulations such as
            Keras' multi-axis ``Softmax``: an upper bound on ``|x|``.  Adds
            ``expm1(LOGSUMEXP_SAFETY * eps_out * (|logsumexp| + 1) / 2)`` with
            ``|logsumexp| <= max_abs_logit + ln(n_classes)``, because the
            rounding of a large ``logsumexp`` skews every output alike and
            cannot be seen from the output.  In 16-bit dtypes this allowance
            quickly exceeds any useful check (bfloat16, logits ~100: > 1).

    Raises:
        ValueError: for an unsupported dtype, ``n_classes < 1`` or a negative
            or non-finite ``max_abs_logit``.
        TypeError: if ``n_classes`` is not an integer.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral):
        raise TypeError(f"n_classes must be an integer, got {type(n_classes).__name__} {n_classes!r}")
    if n_classes < 1:
        raise ValueError(
            f"n_classes must be >= 1 (the number of elements each softmax "
            f"distribution is spread over), got {n_classes}"
        )
    name = normalize_dtype_name(dtype)
    eps_out = MACHINE_EPSILON[name]
    eps_acc = MACHINE_EPSILON[accumulation_dtype(name)]
    n = int(n_classes)
    tol = eps_out * OUTPUT_ROUNDING_EPS + eps_acc * (KERNEL_EPS + n / CLASSES_PER_EPS)

    if max_abs_logit is not None:
        if (
            isinstance(max_abs_logit, bool)
            or not isinstance(max_abs_logit, Real)
            or not math.isfinite(max_abs_logit)
            or max_abs_logit < 0
        ):
            raise ValueError(f"max_abs_logit must be a finite number >= 0, got {max_abs_logit!r}")
        logsumexp_bound = float(max_abs_logit) + math.log(n)
        # expm1: the skew is exp(error of logsumexp) - 1, which is no longer
        # linear once the error reaches ~0.1 (bfloat16 with large logits).
        exponent = LOGSUMEXP_SAFETY * eps_out * (logsumexp_bound + 1.0) / 2.0
        tol += math.expm1(min(exponent, 700.0))
    return tol
