"""Real architectures as a user checks them: keras-hub backbones with
softmax heads (no inputs=), inputs whose domain is inferred from the graph,
softmaxes over variable-length axes, and the single-element rule."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

# Imported before any pytester fixture snapshots sys.modules: keras-hub (and
# the tensorflow_text it imports) cannot be imported twice in one process.
import domain_models  # noqa: F401
import hub_zoo  # noqa: F401
import pytest

TESTS_DIR = Path(__file__).parent
RUN = ("-p", "no:cacheprovider")


@pytest.fixture
def real(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose test files can ``import hub_zoo, domain_models``."""
    pytester.syspathinsert(TESTS_DIR)
    return pytester


HEALTHY_HUB = [
    "hub_zoo.bert_pooled", "hub_zoo.bert_text_classifier", "hub_zoo.gpt2_next_token", "hub_zoo.vit_classifier",
    "hub_zoo.roberta_classifier", "hub_zoo.bart_next_token",
]


def test_keras_hub_softmax_heads_pass_with_no_inputs(real: pytest.Pytester) -> None:
    real.makepyfile(test_hub=f"""
        import pytest, hub_zoo
        @pytest.mark.parametrize("factory", [{", ".join(HEALTHY_HUB)}])
        def test_head(factory, softmax_check):
            report = softmax_check(factory(), max_examples=20)
            assert report.passed and report.examples == 20
    """)
    result = real.runpytest(*RUN)
    result.assert_outcomes(passed=len(HEALTHY_HUB))
    result.stdout.no_fnmatch_line("*cannot feed*")


@pytest.mark.parametrize(
    ("model", "head", "kind"),
    [
        ("hub_zoo.bert_pooled(None)", "output 'head' (head: Dense)", "not normalized"),
        ("hub_zoo.bert_pooled('sigmoid')", "output 'head' (head: Dense)", "not normalized"),
        ("hub_zoo.gpt2_next_token(axis=1)", "output 'next_token' (next_token: Softmax)", "not normalized"),
        ("hub_zoo.gpt2_next_token(activation=None)", "output 'next_token' (next_token: Activation)", "*"),
        ("hub_zoo.vit_classifier(None)", "output 'head' (head: Dense)", "*"),
        ("hub_zoo.roberta_classifier('sigmoid')", "output 'head' (head: Dense)", "not normalized"),
        ("hub_zoo.bart_next_token(None)", "output 'head' (head: Dense)", "*"),
    ],
)
def test_keras_hub_broken_heads_fail_naming_the_head(real: pytest.Pytester, model: str, head: str,
                                                     kind: str) -> None:
    real.makepyfile(test_hub=f"""
        import pytest, hub_zoo
        @pytest.mark.softmax_invariant(model={model}, max_examples=20)
        def test_head():
            pass
    """)
    result = real.runpytest(*RUN, "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*softmax invariant violated: {head} is {kind}: *"])
    result.stdout.no_fnmatch_line("*raised on a plain input*")
    failure = ElementTree.parse(real.path / "junit.xml").find(".//failure")
    assert failure is not None and head in failure.get("message", "")


def test_inferred_domains_are_shown_on_the_failing_input(real: pytest.Pytester) -> None:
    real.makepyfile(test_domains="""
        import pytest, domain_models
        @pytest.mark.softmax_invariant(model=domain_models.masked_mean_logits(), max_examples=10)
        def test_logits():
            pass
    """)
    result = real.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*failing input (edge phase, before the search*",
        ("    token_ids: int32 [[]32, *], edge row, every row: ids *; values in [[]*]; domain: ids in [[]0, 10) "
        "(vocabulary of tokens: Embedding)"),
        "      rebuild: *",
        # Any input shows the logits: the edge phase's worst row, with one of its masks.
        "    padding_mask: int32 [[]32, *], edge row, every row: mask *; values in [[]*]; domain: mask of 0/1 (named as a mask)",
    ])
    # Every rebuild line gives back an input of the domain shown.
    import numpy as np

    import pytest_softmax
    rebuilds = [line.split("rebuild: ", 1)[1] for line in result.outlines if "rebuild: " in line]
    ids, mask = (eval(line, {"pytest_softmax": pytest_softmax}) for line in rebuilds)
    assert ids.dtype == mask.dtype == np.int32 and ids.shape == mask.shape
    assert 0 <= ids.min() and ids.max() < 10 and set(np.unique(mask)) <= {0, 1}


def test_domains_are_found_inside_a_nested_backbone(real: pytest.Pytester) -> None:
    """BertTextClassifier nests its backbone: ids and masks are followed into it."""
    real.makepyfile(test_nested="""
        import pytest, hub_zoo
        @pytest.mark.softmax_invariant(model=hub_zoo.bert_text_classifier(None), max_examples=10)
        def test_logits():
            pass
    """)
    result = real.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output 'logits' (logits: Dense) is *",
        ("    token_ids: int32 [[]32, *]; domain: ids in [[]0, 60) (vocabulary of *token_embedding: "
        "ReversibleEmbedding), length at most 12"),
        ("    segment_ids: int32 [[]32, *]; domain: ids in [[]0, 2) (vocabulary of *segment_embedding: Embedding)"
        ", length at most 12"),
        ("    padding_mask: int32 [[]32, *], *mask *; domain: mask of 0/1 (passed as padding_mask= to "
        "*transformer_layer_0: TransformerEncoder), length at most 12"),
    ])


def test_every_input_reaching_an_embedding_gets_its_ids(real: pytest.Pytester) -> None:
    real.makepyfile(test_shared="""
        import domain_models
        from pytest_softmax import check_softmax
        def test_shared():
            report = check_softmax(domain_models.shared_embedding_in_nested_model(), max_examples=25)
            assert report.passed

        def test_float_ids():
            report = check_softmax(domain_models.float_ids_embedding(), max_examples=25)
            assert report.passed
    """)
    real.runpytest(*RUN).assert_outcomes(passed=2)


def test_keras_hub_masks_come_in_realistic_patterns(real: pytest.Pytester) -> None:
    """Padding-style rows (ones then zeros), all ones and, rarely, all zeros;
    ids within the smallest vocabulary; a mask as long as its sequence."""
    real.makepyfile(test_patterns="""
        import numpy as np, hub_zoo
        from hypothesis import given, settings
        from pytest_softmax.adapters.keras.adapter import KerasModelAdapter
        from pytest_softmax.core.inputs.strategies import generated_batches

        SPECS = KerasModelAdapter(hub_zoo.bert_pooled()).input_specs()
        SEEN = set()

        @settings(max_examples=150, database=None, derandomize=True)
        @given(generated_batches(SPECS, 4))
        def test_batches(batch):
            arrays = dict(zip([s.name for s in SPECS], batch.arrays))
            mask, segments, tokens = arrays["padding_mask"], arrays["segment_ids"], arrays["token_ids"]
            assert mask.shape == segments.shape == tokens.shape and 1 <= mask.shape[1] <= 12
            assert set(np.unique(mask)) <= {0, 1} and segments.min() >= 0 and segments.max() < 2
            assert tokens.min() >= 0 and tokens.max() < 60
            # padding-style: once a row has a 0, it has no 1 after it
            assert not (np.diff(mask.astype(int), axis=1) > 0).any()
            SEEN.add("ones" if mask.all() else "zeros" if not mask.any() else "padding")

        def test_all_patterns_seen():
            assert SEEN == {"ones", "zeros", "padding"}
    """)
    real.runpytest(*RUN, "-p", "no:randomly").assert_outcomes(passed=2)


def test_variable_lengths_are_mostly_two_or_more(real: pytest.Pytester) -> None:
    real.makepyfile(test_lengths="""
        from hypothesis import given, settings
        from pytest_softmax.adapters.base import InputSpec
        from pytest_softmax.core.inputs.strategies import generated_batches

        LENGTHS = []

        @settings(max_examples=200, database=None, derandomize=True)
        @given(generated_batches([InputSpec("x", (None, 3), "float32")], 2))
        def test_draw(batch):
            LENGTHS.append(batch.arrays[0].shape[1])

        def test_share():
            assert min(LENGTHS) >= 1 and max(LENGTHS) <= 16
            assert sum(n >= 2 for n in LENGTHS) >= 0.85 * len(LENGTHS)
            assert len(set(LENGTHS)) > 5
    """)
    real.runpytest(*RUN, "-p", "no:randomly").assert_outcomes(passed=2)


def test_softmax_over_a_variable_length_axis_is_checked_along_it(real: pytest.Pytester) -> None:
    real.makepyfile(test_attention="""
        import numpy as np, pytest, warnings, domain_models
        MODEL = domain_models.attention_pooling_weights()

        @pytest.mark.softmax_invariant(model=MODEL, axis=1, max_examples=30)
        def test_generated():
            pass

        # One step: the weights over a one-step sequence are 1, which is correct.
        @pytest.mark.softmax_invariant(model=MODEL, axis=1, inputs=np.ones((4, 1, 5), "float32"))
        def test_one_step():
            pass

        # The same inside a classifier: the internal site is checked along its axis, silently at length 1.
        @pytest.mark.softmax_invariant(model=domain_models.attention_pooling_classifier(), max_examples=30)
        def test_inside():
            pass

        @pytest.mark.softmax_invariant(model=domain_models.attention_pooling_classifier(),
                                       inputs=np.ones((4, 1, 5), "float32"))
        def test_inside_one_step():
            pass
    """)
    result = real.runpytest(*RUN, "-W", "error")
    result.assert_outcomes(passed=4)
    result.stdout.no_fnmatch_line("*size 1*")
    result.stdout.no_fnmatch_line("*single element*")


def test_softmax_over_a_fixed_one_element_axis_fails_with_attention_advice(real: pytest.Pytester) -> None:
    real.makepyfile(test_attention="""
        import pytest, domain_models
        @pytest.mark.softmax_invariant(model=domain_models.attention_over_one_element(), max_examples=10)
        def test_it():
            pass
    """)
    result = real.runpytest(*RUN, "--softmax-report=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("softmax invariant violated: internal softmax 'attn_one/attn' (Softmax) is a softmax over a single "
        "element: size 1 along axis -1 for every input (shape [[]None, None, 1]) *"),
        ("  Softmax 'attn_one/attn' normalizes over a single element: its result is the constant 1*"
        "attention weights: normalize over the sequence axis instead, e.g. Softmax(axis=1)*"),
    ])
    report = json.loads((real.path / "report.json").read_text())
    assert "attn_one/attn" in json.dumps(report)


def test_a_model_that_still_cannot_be_fed_gets_inputs_of_the_failing_shape_and_domain(
        real: pytest.Pytester) -> None:
    real.makepyfile(test_fixed="""
        import pytest, domain_models
        @pytest.mark.softmax_invariant(model=domain_models.ids_of_fixed_length(), batch_size=8)
        def test_it():
            pass
    """)
    result = real.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("pytest-softmax: model 'fixed8' raised on a plain input built from its input signature and the domains "
        "inferred from its graph ('ids': int32 [[]8, 4], ids in [[]0, 20) (vocabulary of emb: Embedding)): *"
        "e.g. @pytest.mark.softmax_invariant(..., inputs=np.random.default_rng(0).integers(0, 20, (8, 4))"
        ".astype('int32'))"),
    ])
