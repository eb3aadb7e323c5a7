"""Settings as a user meets them: ini files, flags, the marker, and the
order in which they win (marker > command line > ini > dtype default)."""

from __future__ import annotations

import pytest

# model_zoo.scaled_softmax(1.001): rows sum to 1.001, an error of 1e-3.
SCALED_TEST = """
    import pytest, model_zoo
    @pytest.mark.softmax_invariant(model=model_zoo.scaled_softmax, max_examples=5{marker})
    def test_scaled():
        pass
"""


def run_scaled(pytester: pytest.Pytester, *args: str, marker: str = "") -> pytest.RunResult:
    pytester.makepyfile(test_scaled=SCALED_TEST.format(marker=marker))
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_default_tolerance_catches_an_error_of_1e_3(zoo: pytest.Pytester) -> None:
    run_scaled(zoo).assert_outcomes(failed=1)


@pytest.mark.parametrize("config_file, content", [
    ("pytest.ini", "[pytest]\nsoftmax_atol = 0.01\n"),
    ("tox.ini", "[pytest]\nsoftmax_atol = 0.01\n"),
    ("setup.cfg", "[tool:pytest]\nsoftmax_atol = 0.01\n"),
    ("pyproject.toml", '[tool.pytest.ini_options]\nsoftmax_atol = "0.01"\n'),
    ("pyproject.toml", "[tool.pytest.ini_options]\nsoftmax_atol = 0.01\n"),
])
def test_ini_atol_in_every_config_file_format(zoo: pytest.Pytester, config_file: str, content: str) -> None:
    (zoo.path / config_file).write_text(content)
    run_scaled(zoo).assert_outcomes(passed=1)


def test_command_line_beats_ini(zoo: pytest.Pytester) -> None:
    zoo.makeini("[pytest]\nsoftmax_atol = 0.01\n")
    result = run_scaled(zoo, "--softmax-atol=1e-4")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*is not normalized: max |sum - 1| = 0.00* > tolerance 0.0001 *"])


def test_marker_beats_command_line(zoo: pytest.Pytester) -> None:
    run_scaled(zoo, "--softmax-atol=1e-4", marker=", atol=0.01").assert_outcomes(passed=1)


def test_rtol_adds_to_atol(zoo: pytest.Pytester) -> None:
    run_scaled(zoo, "--softmax-atol=1e-4", "--softmax-rtol=0.01").assert_outcomes(passed=1)


def test_per_dtype_ini_key_beats_generic_ini_key(zoo: pytest.Pytester) -> None:
    zoo.makeini("[pytest]\nsoftmax_atol = 1e-5\nsoftmax_atol_float32 = 0.01\nsoftmax_atol_float16 = 1e-9\n")
    run_scaled(zoo).assert_outcomes(passed=1)


def test_command_line_beats_per_dtype_ini_key(zoo: pytest.Pytester) -> None:
    zoo.makeini("[pytest]\nsoftmax_atol_float32 = 0.01\n")
    run_scaled(zoo, "--softmax-atol=1e-5").assert_outcomes(failed=1)


def test_max_examples_and_batch_size_reach_the_search(zoo: pytest.Pytester) -> None:
    zoo.makeini("[pytest]\nsoftmax_max_examples = 7\nsoftmax_batch_size = 3\n")
    zoo.makepyfile(test_counts="""
        import model_zoo
        def test_counts(softmax_check):
            report = softmax_check(model_zoo.lstm_dense_softmax())
            # The edge phase's batches (3 at most) are checked too, and counted apart.
            assert (report.examples, report.edge_batches) == (7, 3), report
            assert report.rows == (7 + 3) * 3, report.rows
            report = softmax_check(model_zoo.lstm_dense_softmax(), max_examples=4, batch_size=2)
            assert (report.examples, report.edge_batches, report.rows) == (4, 3, (4 + 3) * 2)
    """)
    zoo.runpytest("-p", "no:cacheprovider", "--softmax-max-examples=7").assert_outcomes(passed=1)


@pytest.mark.parametrize("ini, expected", [
    ("softmax_atol = abc", "*softmax_atol = 'abc' in *tox.ini: 'abc' is not a number*"),
    ("softmax_atol = -1", "*softmax_atol = '-1' in *tox.ini: '-1' is negative*"),
    ("softmax_rtol = nan", "*softmax_rtol = 'nan' in *tox.ini: 'nan' is not finite*"),
    ("softmax_max_examples = 0", "*softmax_max_examples = '0' in *tox.ini: '0' must be at least 1*"),
    ("softmax_batch_size = 2.5", "*softmax_batch_size = '2.5' in *tox.ini: '2.5' is not a whole number*"),
])
def test_bad_ini_values_stop_pytest_naming_the_key(pytester: pytest.Pytester, ini: str, expected: str) -> None:
    (pytester.path / "tox.ini").write_text(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-softmax: {expected}"])


def test_bad_flag_value_names_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--softmax-max-examples=many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-softmax: --softmax-max-examples: 'many' is not a whole number*"])


def test_marker_is_registered_for_strict_markers_and_documented(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.softmax_invariant(model="missing.keras")
        def test_x(): pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    markers = pytester.runpytest("-p", "no:cacheprovider", "--markers")
    markers.stdout.fnmatch_lines([
        "@pytest.mark.softmax_invariant(model=None, *, axis=-1, atol=None, rtol=None, max_examples=None, "
        "batch_size=None, inputs=None, outputs=None*): check that the model's outputs are probability*"
    ])


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.softmax_invariant(model="missing.keras")
        def test_x(): pass
    """)
    # In a subprocess: pytest's marker registry outlives an in-process run.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:softmax", "--strict-markers")
    result.stdout.fnmatch_lines(["*'softmax_invariant' not found in `markers` configuration option*"])


def test_unknown_marker_argument_names_the_valid_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.softmax_invariant(model="m.keras", atoll=1e-3)
        def test_typo(): pass

        def test_unaffected(): pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*@pytest.mark.softmax_invariant: unknown argument atoll=0.001; valid arguments are: model, axis, atol*"
    ])


def test_missing_model_says_how_to_give_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.softmax_invariant
        def test_no_model(): pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*pytest-softmax: @pytest.mark.softmax_invariant on test_missing_model_says_how_to_give_one.py::"
        "test_no_model has no model: pass one*or define a `model` fixture"
    ])


def test_header_shows_settings_in_verbose_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsoftmax_atol_float16 = 0.002\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "--softmax-max-examples=12", "--hypothesis-seed=5")
    result.stdout.fnmatch_lines([
        "softmax: atol=dtype-aware default, atol[[]float16[]]=0.002, rtol=0, max_examples=12, "
        "batch_size=32, hypothesis seed=5*"
    ])


@pytest.mark.parametrize(
    ("mode", "name", "value", "cli_value", "expected"),
    [
        ("MARKER", "axis", "1", None, "@pytest.mark.softmax_invariant(..., axis=1)"),
        ("FIXTURE", "axis", "1", None, "softmax_check(model, axis=1)"),
        ("FUNCTION", "outputs", "['probs']", "probs", "check_softmax(model, outputs=['probs'])"),
        ("MODEL_ITEM", "axis", "1", None, "--softmax-axis=1 (or softmax_axis = 1 in the ini file)"),
        ("MODEL_ITEM", "outputs", "['probs']", "probs",
         "--softmax-outputs=probs (or softmax_outputs = probs in the ini file)"),
        # What no flag or ini key can take: only a marked test can.
        ("MODEL_ITEM", "inputs", "[x]", None,
         "a marked test instead of --softmax-model, since only a test can pass inputs=: "
         "@pytest.mark.softmax_invariant(model='path/to/model', inputs=[x])"),
        ("MODEL_ITEM", "atol_float16", "0.01", None,
         "a marked test instead of --softmax-model, since only a test can pass atol_float16=: "
         "@pytest.mark.softmax_invariant(model='path/to/model', atol_float16=0.01)"),
    ],
)
def test_a_fix_is_phrased_for_the_way_the_check_was_asked_for(
    mode: str, name: str, value: str, cli_value: str | None, expected: str
) -> None:
    from pytest_softmax.settings import Mode, checking_in, how_to_set

    with checking_in(Mode[mode]):
        assert how_to_set(name, value, cli_value) == expected
    assert how_to_set(name, value, cli_value).startswith("check_softmax(model, ")  # the mode is put back


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("probs", ("probs",)), ("probs, 2", ("probs", 2)), ("probs,logits", ("probs", "logits")),
     (" -1 ", (-1,)), (["probs", 0], ("probs", 0)), (("a", " b "), ("a", "b")), ("2x", ("2x",))],
)
def test_output_lists_take_names_and_indices(raw: object, expected: tuple[object, ...]) -> None:
    from pytest_softmax.settings import parse_output_list

    assert parse_output_list(raw) == expected


@pytest.mark.parametrize("raw", ["", " , ", [], ["", " "]])
def test_an_output_list_naming_nothing_is_refused(raw: object) -> None:
    from pytest_softmax.settings import parse_output_list

    with pytest.raises(ValueError, match=r"names no output; use output names or indices, e.g. probs or probs,logits"):
        parse_output_list(raw)


@pytest.mark.parametrize(("raw", "expected"), [(-1, -1), (1, 1), ("2", 2), (" -1 ", -1)])
def test_an_axis_is_an_integer(raw: object, expected: int) -> None:
    from pytest_softmax.settings import parse_axis_text

    assert parse_axis_text(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [
    (True, "True is not an integer axis; use e.g. -1"),
    ("last", "'last' is not an integer axis; use e.g. -1 or 1"),
    ("1.5", "'1.5' is not an integer axis; use e.g. -1 or 1"),
])
def test_an_axis_that_is_not_an_integer_is_refused(raw: object, message: str) -> None:
    from pytest_softmax.settings import parse_axis_text

    with pytest.raises(ValueError) as refused:
        parse_axis_text(raw)
    assert str(refused.value) == message
