"""Names shared by the report data and its rendering (standard library only)."""

from __future__ import annotations

# The ways an output can break the invariant, worst first.
NOT_FINITE = "not finite"
OUT_OF_RANGE = "out of range"
NOT_NORMALIZED = "not normalized"
MODEL_RAISED = "model raised"
# A softmax over an axis the model fixes to size 1: always the constant 1.
SINGLE_ELEMENT = "a softmax over a single element"
# Found before the search: a model variable holds NaN/Inf.
WEIGHTS_NOT_FINITE = "weights not finite"

# The rebuild line of an input the test gave (nothing to rebuild).
GIVEN_INPUT = "(the inputs= you passed)"
