"""A TensorFlow SavedModel's ``serving_default`` signature as a model.

Loading it runs no Python code from the directory; layers are not visible,
so failures name the signature output only.  Running the signature runs
whatever ops its graph holds, though, and a graph can write or delete files,
call back into Python or talk to the network: in safe mode such a graph is
refused before anything runs (the reason Keras' safe mode refuses
``TFSMLayer``), naming the op and the function that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from ..base import InputSpec, ModelFailure, NonFiniteWeight, OutputSpec, SoftmaxSetupError
from . import errors, state
from .safe_loading import opt_in

# Ops whose effects outlive the call (files, summaries, checkpoints, the
# network) or that run arbitrary Python, by what they do.
SIDE_EFFECT_OPS: dict[str, str] = {
    **dict.fromkeys(
        ("WriteFile", "Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints", "DeleteFile",
         "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "SaveDataset", "SaveDatasetV2",
         "SnapshotDataset", "SnapshotDatasetV2", "DebugIdentityV2", "DebugIdentityV3"),
        "writes files"),
    **dict.fromkeys(("ReadFile", "MatchingFiles", "RestoreV2", "Restore", "RestoreSlice"), "reads files"),
    **dict.fromkeys(
        ("CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary", "WriteScalarSummary",
         "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
         "WriteRawProtoSummary", "ImportEvent", "FlushSummaryWriter", "CloseSummaryWriter"),
        "writes summary files"),
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"), "calls back into Python"),
    **dict.fromkeys(("Rpc", "TryRpc", "RpcCall", "RpcClient", "RpcServer", "DataServiceDataset",
                     "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4"),
                    "talks to the network"),
}


def load_saved_model(path: Path, *, safe_mode: bool) -> SavedModelSignature:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # a corrupt saved_model.pb or missing variables
        raise SoftmaxSetupError(
            f"could not load SavedModel directory {str(path)!r}: {errors.first_line(exc)}; save it again"
        ) from exc
    signature = SavedModelSignature(loaded, str(path))
    if safe_mode:
        found = side_effects(signature.graph_def())
        if found:
            raise SoftmaxSetupError(
                f"SavedModel {str(path)!r}: its serving_default signature holds {'; '.join(found)}; running "
                "the check would run it, so pytest-softmax refuses graphs with file-system, Python-callback "
                f"or network ops in safe mode. If you trust this SavedModel, {opt_in()}"
            )
    return signature


def side_effects(graph_def: Any) -> list[str]:
    """Each side-effecting op of a graph and of every function in its
    library (called functions, loop and branch bodies), as 'op X (node N in
    function F), which does what'."""
    found: dict[str, None] = {}
    places = [("serving_default", graph_def.node)]
    places += [(function.signature.name, function.node_def) for function in graph_def.library.function]
    for function_name, nodes in places:
        for node in nodes:
            effect = SIDE_EFFECT_OPS.get(node.op)
            if effect is None and node.op == "PrintV2" and _prints_to_file(node):
                effect = "writes files"
            if effect is not None:
                found.setdefault(f"op {node.op} (node {node.name!r} in function {function_name!r}), which {effect}")
    return list(found)


def _prints_to_file(node: Any) -> bool:
    stream = node.attr["output_stream"].s if "output_stream" in node.attr else b""
    return bytes(stream).startswith(b"file://")


class SavedModelSignature:
    """Adapter for a SavedModel's ``serving_default`` signature."""

    def __init__(self, loaded: Any, path: str) -> None:
        self.path = path
        signatures = getattr(loaded, "signatures", {})
        if "serving_default" not in signatures:
            raise SoftmaxSetupError(f"SavedModel {path!r} has no serving_default signature")
        self._fn = signatures["serving_default"]
        self._loaded = loaded  # keeps the variables alive
        # The signature's specs are read once: parsing them costs more than a
        # small model's forward pass.
        self._inputs = [
            InputSpec(name=name, shape=tuple(spec.shape)[1:], dtype=spec.dtype.name)
            for name, spec in sorted(self._fn.structured_input_signature[1].items())
        ]
        self._outputs = [OutputSpec(name, i, name, "SavedModel signature")
                         for i, name in enumerate(sorted(self._fn.structured_outputs))]

    def graph_def(self) -> Any:
        """The signature's graph with its function library."""
        return self._fn.graph.as_graph_def()

    @property
    def name(self) -> str:
        return Path(self.path).name

    def input_specs(self) -> list[InputSpec]:
        return list(self._inputs)

    def output_specs(self) -> list[OutputSpec]:
        return list(self._outputs)

    def forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import tensorflow as tf

        feed = {spec.name: tf.convert_to_tensor(x, dtype=spec.dtype) for spec, x in zip(self._inputs, inputs)}
        result = self._fn(**feed)
        return [np.asarray(result[spec.name]) for spec in self._outputs]

    def nonfinite_weights(self) -> list[NonFiniteWeight]:
        from .weights import nonfinite_saved_variables

        return nonfinite_saved_variables(self._loaded)

    @property
    def backend(self) -> str:
        return "tensorflow"

    def run_notes(self) -> list[str]:
        return []

    def explain_error(self, exc: BaseException) -> ModelFailure:
        return errors.explain(exc)

    def preserved_state(self) -> AbstractContextManager[object]:
        return state.preserved_state(None)
