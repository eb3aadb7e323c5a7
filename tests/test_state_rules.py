"""The diagnosis rules that read a layer's own variables, on synthetic
probe records (no framework): which summary fires which rule, and the
counts and plurals each message states."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_softmax.adapters.base.records import (
    OTHER,
    POSITIVE_PARAMETER,
    VARIANCE_STATISTIC,
    LayerRecord,
    LayerSite,
    VariableSummary,
)
from pytest_softmax.core.diagnosis.nonfinite import explain_nonfinite
from pytest_softmax.core.diagnosis.table import LayerTable

GENERIC_CAUSE = "first NaN/Inf: a division by zero, log(0) or sqrt(<0)?"


def explained(*variables: VariableSummary) -> tuple[str, str, str]:
    """(line after the head, cause, fix) for a layer fed finite inputs that made NaN."""
    site = LayerSite(path="m/layer", name="layer", layer_class="Custom", kind=OTHER, producers=("input 'x'",))
    layer = LayerRecord(site, np.array([[np.nan, 1.0]], "float32"), variables=variables)
    by_path = {site.path: layer}
    finding = explain_nonfinite(layer, by_path, LayerTable(by_path, -1, 1e-6), {"input 'x'": 1.0})
    head = ("Custom 'm/layer' is the first layer whose output holds NaN/Inf (1 values in the probed rows) although "
            "its inputs are finite; fed by input 'x' (finite, max |value| 1): ")
    assert finding.line.startswith(head), finding.line
    return finding.line[len(head):], finding.cause, finding.fix


def summary(name: str, role: str = "", **counts: float) -> VariableSummary:
    return VariableSummary(name=name, size=10, role=role, **counts)  # type: ignore[arg-type]


def test_a_variable_holding_nan_and_inf_is_named_with_both_counts() -> None:
    line, cause, fix = explained(summary("bias"), summary("kernel", nan=2, inf=1))
    assert line.startswith("its own variable 'kernel' holds 2 NaN and 1 Inf of 10 values, and finite inputs times")
    assert (cause, fix) == ("its variable kernel holds NaN",
                            "retrain, or replace the non-finite entries of kernel with finite values")
    assert explained(summary("kernel", inf=3))[1] == "its variable kernel holds Inf"


@pytest.mark.parametrize(("negative", "plural"), [(1, "1 negative value of 10"), (2, "2 negative values of 10")])
def test_a_negative_variance_statistic_is_counted(negative: int, plural: str) -> None:
    line, cause, _ = explained(summary("moving_variance", VARIANCE_STATISTIC, negative=negative, minimum=-0.5))
    assert line.startswith(f"its stored variance statistic 'moving_variance' holds {plural} (down to -0.5); ")
    assert cause == "negative moving_variance (-0.5) under a square root"


def test_a_variance_that_is_zero_or_an_ordinary_weight_that_is_negative_is_no_reason() -> None:
    assert explained(summary("moving_variance", VARIANCE_STATISTIC, zero=3, minimum=0.0))[1] == GENERIC_CAUSE
    assert explained(summary("kernel", negative=5, minimum=-2.0))[1] == GENERIC_CAUSE


@pytest.mark.parametrize(
    ("negative", "zero", "count"),
    [(0, 1, "1 value <= 0"), (1, 2, "3 values <= 0"), (2, 0, "2 values <= 0")],
)
def test_a_scale_that_is_zero_or_negative_is_counted(negative: int, zero: int, count: str) -> None:
    line, cause, _ = explained(summary("scale", POSITIVE_PARAMETER, negative=negative, zero=zero, minimum=-1.0 * negative))
    assert line.startswith(f"its variable 'scale', a scale meant to stay positive, holds {count} of 10 ")
    assert cause == "scale <= 0 under a log, root or division"


def test_a_positive_scale_is_no_reason() -> None:
    assert explained(summary("scale", POSITIVE_PARAMETER, minimum=0.5))[1] == GENERIC_CAUSE


def test_the_variables_own_values_come_before_the_guess_and_nan_entries_before_statistics() -> None:
    both = explained(summary("moving_variance", VARIANCE_STATISTIC, negative=1, minimum=-1.0),
                     summary("gamma", inf=1))
    assert both[1] == "its variable gamma holds Inf"
