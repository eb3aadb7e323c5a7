"""Issue 12, part 1 (engine): a check that examined nothing is an error,
never a pass, and hostile or careless inputs get a `pytest-softmax:` message
naming what is at fault instead of a traceback from inside the plugin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import first_failure_line, importing
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pytest_softmax import SoftmaxSetupError, check_softmax

TESTS_DIR = Path(__file__).parent
RUN = ("-p", "no:cacheprovider")


@pytest.fixture
def user(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose test files can ``import hardening_models``."""
    return importing(pytester, "hardening_models")


def marked(extra: str, model: str = "hm.healthy") -> str:
    return (
        "import numpy as np, pytest, hardening_models as hm\n"
        "from hypothesis import strategies as st\n"
        f"@pytest.mark.softmax_invariant(model={model}, {extra}, max_examples=5)\n"
        "def test_it():\n    pass\n"
    )


# 1, 2. nothing selected, nothing fed ------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("outputs=[]", ("pytest-softmax: outputs=[[][]] selects no output, so nothing would be checked; "
                        "name at least one of the model's outputs: 0: 'probs'*")),
        ("inputs=np.zeros((0, 4), 'float32')",
         "pytest-softmax: inputs= holds 0 rows, so nothing would be checked; give at least one row*"),
        ("inputs=st.just(np.zeros((0, 4), 'float32'))",
         "pytest-softmax: the inputs= strategy drew a batch of 0 rows*draw at least one row per batch*"),
    ],
)
def test_a_check_that_would_examine_nothing_is_an_error(user: pytest.Pytester, extra: str, expected: str) -> None:
    user.makepyfile(marked(extra))
    result = user.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([expected])
    assert first_failure_line(result).startswith("pytest-softmax: ")


def test_a_model_that_drops_every_row_is_an_error_not_a_pass() -> None:
    """The general rule, whatever the cause: zero rows of a required output."""
    import keras

    inp = keras.Input((4,), name="x")
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(inp)
    empty = keras.Model(inp, keras.layers.Lambda(lambda t: t[:0], output_shape=(3,), name="drop")(probs))
    with pytest.raises(SoftmaxSetupError, match=r"checked 0 rows of output 'drop'.*after 5 examples"):
        check_softmax(empty, max_examples=5)


# 3. Hypothesis told to run nothing ----------------------------------------------


@pytest.mark.parametrize(
    ("phases", "why"),
    [
        ("[Phase.explicit, Phase.reuse]",
         "*Hypothesis ran no examples: the Hypothesis profile 'no_generate' sets phases=*without Phase.generate*"),
        ("[Phase.explicit]",
         "*Hypothesis ran no examples: the Hypothesis profile 'no_generate' sets phases=*without Phase.generate*"),
    ],
)
def test_a_profile_that_runs_no_examples_fails_the_check(
    user: pytest.Pytester, tmp_path: Path, phases: str, why: str,
) -> None:
    import hardening_models as hm

    hm.healthy().save(user.path / "clf.keras")
    user.makeconftest(
        "from hypothesis import settings, Phase\n"
        f"settings.register_profile('no_generate', phases={phases}, database=None)\n"
    )
    user.makepyfile(marked("batch_size=4"))
    try:
        result = user.runpytest(*RUN, "--hypothesis-profile=no_generate", "--softmax-model", "clf.keras", "-rA")
    finally:
        hypothesis_settings.load_profile("default")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([why, "*add Phase.generate*"])
    result.stdout.no_fnmatch_line("*told to run no test cases*")


# 11. a batch that cannot fit in memory -------------------------------------------


@pytest.mark.parametrize(
    ("batch_size", "model", "expected"),
    [
        (10**12, "healthy", (r"a generated batch of 1000000000000 rows for model '.*' needs 14\.6 TiB "
                             r"\(input 'x': float32 \[1000000000000, 4\]\).*lower the batch size: "
                             r"check_softmax\(model, batch_size=32\) \(at most")),
        (32, "huge_input", (r"a generated batch of 32 rows for model '.*' needs 2\.33 TiB .*even one row needs "
                            r"74\.5 GiB.*pass inputs= with smaller arrays")),
    ],
)
def test_a_batch_too_large_for_memory_is_sized_before_it_is_built(batch_size: int, model: str, expected: str) -> None:
    import hardening_models as hm

    with pytest.raises(SoftmaxSetupError, match=expected):
        check_softmax(getattr(hm, model)(), batch_size=batch_size, max_examples=2)


# 12 and the XLA flag: inference that writes what the user owns ------------------


def test_a_trainable_variable_written_by_inference_is_put_back() -> None:
    import hardening_models as hm

    model, counter = hm.counting()
    report = check_softmax(model, max_examples=5)
    assert report.passed and report.examples >= 5
    assert float(counter.calls.numpy()) == 0.0


# TensorFlow-only by design: which variables inference writes is read from the traced tf.function's graph ops.
@pytest.mark.tensorflow_only
def test_only_the_variables_inference_writes_are_copied() -> None:
    """The memory cost: a model whose inference writes nothing copies no
    weight; a counting layer costs one scalar."""
    import hardening_models as hm

    from pytest_softmax.adapters.keras.adapter import KerasModelAdapter

    assert KerasModelAdapter(hm.healthy())._written_variables() == []
    model, counter = hm.counting()
    assert KerasModelAdapter(model)._written_variables() == [counter.calls]


# TensorFlow-only by design: its model calls tf.while_loop, and the writes are read from tf.function graph ops.
@pytest.mark.tensorflow_only
def test_a_write_inside_a_loop_body_copies_every_variable_and_is_put_back() -> None:
    """A write the graph cannot trace back to one variable: correct first."""
    import hardening_models as hm

    from pytest_softmax.adapters.keras.adapter import KerasModelAdapter

    model, counter = hm.loop_counting()
    assert len(KerasModelAdapter(model)._written_variables()) == len(model.variables)
    check_softmax(model, max_examples=3)
    assert float(counter.calls.numpy()) == 0.0


# TensorFlow-only by design: tf.config.optimizer's XLA flag exists only on the TensorFlow backend.
@pytest.mark.tensorflow_only
def test_an_xla_flag_set_inside_call_is_put_back() -> None:
    import hardening_models as hm

    before = tf.config.optimizer.get_jit()
    model = hm.sets_jit()  # building it runs call() once, which sets the flag
    try:
        tf.config.optimizer.set_jit(False)
        check_softmax(model, max_examples=2)
        assert tf.config.optimizer.get_jit() in ("", False)
    finally:
        tf.config.optimizer.set_jit(before or False)


# 15-18. models the check cannot take, said plainly --------------------------------


@pytest.mark.parametrize("extra", ["atol=1e-3", "batch_size=4"])
def test_a_complex_output_is_a_clear_setup_error(user: pytest.Pytester, extra: str) -> None:
    user.makepyfile(marked(extra, model="hm.complex_output"))
    result = user.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["pytest-softmax: output '*' (*) has dtype complex64; only float outputs can be probability distributions*"])
    result.stdout.no_fnmatch_line("*unsupported dtype*")


def test_complex_values_at_an_internal_softmax_site_are_not_a_raw_error() -> None:
    """An internal site is measured in the same pass as the outputs: values
    that are not real floats there are skipped, not a tolerance ValueError."""
    from pytest_softmax.adapters.base.records import SOFTMAX, LayerRecord, LayerSite
    from pytest_softmax.core.sites import SiteChecker
    from pytest_softmax.settings import resolve

    site = LayerSite(path="model/odd", name="odd", layer_class="Odd", kind=SOFTMAX, softmax_axes=(-1,))
    record = LayerRecord(site=site, output=np.ones((2, 3), np.complex64) / 3)
    checker = SiteChecker(adapter=None, settings=resolve(None))  # type: ignore[arg-type]
    assert checker.check(record) == ([], 0.0)


def test_an_output_dtype_without_a_tolerance_is_a_setup_error() -> None:
    from pytest_softmax.adapters.base import OutputSpec
    from pytest_softmax.core.search import validate_output

    spec = OutputSpec("wide", 0, "wide", "Cast")
    with pytest.raises(SoftmaxSetupError, match=r"output 'wide' .*unsupported dtype.*cast the output to float32"):
        validate_output(spec, np.full((2, 3), 1 / 3, np.longdouble), -1)


def test_a_sparse_input_is_named_sparse_and_dense_inputs_feed_it() -> None:
    import hardening_models as hm
    import keras

    if keras.backend.backend() == "torch":
        pytest.skip("Keras' torch backend has no sparse tensors: keras.Input(sparse=True) raises before any check")

    with pytest.raises(SoftmaxSetupError, match=r"model input 'x' is sparse \(float32\); the generator cannot "
                                                r"feed it.*pass inputs= with example data as dense arrays.*"
                                                r"inputs=np\.zeros\(\(8, 4\), 'float32'\)"):
        check_softmax(hm.sparse_input(), max_examples=2)
    assert check_softmax(hm.sparse_input(), inputs=np.linspace(0, 1, 32, dtype="float32").reshape(8, 4)).passed


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        ("ForwardModule", r"ForwardModule is a tf\.Module, not a keras\.Model.*tf\.saved_model\.save"),
        ("ForwardObject", (r"ForwardObject object is a callable that takes arguments \(x\).*not a model.*"
                           r"zero-argument factory")),
        ("forward_function", r"function forward_function\(x\) takes arguments.*not a model.*zero-argument factory"),
    ],
)
def test_a_callable_that_is_not_a_factory_is_never_called(make: str, expected: str) -> None:
    import hardening_models as hm

    source = getattr(hm, make)
    passed = source if make == "forward_function" else source()
    hm.RAN.clear()
    with pytest.raises(SoftmaxSetupError, match=expected):
        check_softmax(passed, max_examples=2)
    assert hm.RAN == [] and getattr(passed, "ran", 0) == 0


def test_a_stateful_rnn_is_blamed_for_its_carried_state() -> None:
    import hardening_models as hm

    model = hm.stateful_lstm()
    states = [np.array(v.numpy()) for v in model.non_trainable_variables]
    with pytest.raises(SoftmaxSetupError, match=r"layer 'lstm' \(LSTM\) is stateful.*carries its state from one "
                                                r"call to the next.*reset_state.*stateful=False") as raised:
        check_softmax(model, batch_size=8, max_examples=2)
    assert "draws random numbers" not in str(raised.value)
    assert all(np.array_equal(v.numpy(), saved) for v, saved in zip(model.non_trainable_variables, states))


def test_a_stateful_rnn_at_another_batch_size_is_told_to_use_its_own() -> None:
    import hardening_models as hm

    with pytest.raises(SoftmaxSetupError, match=r"layer 'lstm' \(LSTM\) is stateful and takes only the batch size "
                                                r"it was built with: set it with check_softmax\(model, batch_size=N\)"):
        check_softmax(hm.stateful_lstm(), batch_size=32, max_examples=2)


@pytest.mark.parametrize(
    "strategy", [st.just(np.zeros((2, 4), "float32")).filter(lambda a: False), st.nothing()], ids=["filter", "nothing"],
)
def test_a_strategy_that_draws_nothing_is_a_setup_error(strategy: st.SearchStrategy[np.ndarray]) -> None:
    import hardening_models as hm

    with pytest.raises(SoftmaxSetupError, match=r"the inputs= strategy drew no batch, so nothing was checked"):
        check_softmax(hm.healthy(), inputs=strategy, max_examples=5)


def test_batch_sizing_counts_variable_dimensions_at_their_largest() -> None:
    """The largest batch a search can draw is what must fit; a budget that
    holds it passes, one byte less is refused with the rows that fit."""
    from pytest_softmax.adapters.base import InputSpec
    from pytest_softmax.core.inputs.sizing import batch_bytes, require_batch_fits

    specs = [InputSpec("tokens", (None,), "int32"), InputSpec("features", (None, 8), "float16")]
    needed = batch_bytes(specs, 64, 16)
    assert needed == 64 * 16 * 4 + 64 * 16 * 8 * 2
    require_batch_fits("m", specs, 64, 16, budget=needed)
    with pytest.raises(SoftmaxSetupError, match=r"needs 20 KiB \(input 'tokens': int32 \[64, 16\]; input "
                                                r"'features': float16 \[64, 16, 8\]\).*at most 63 rows fit"):
        require_batch_fits("m", specs, 64, 16, budget=needed - 1)
