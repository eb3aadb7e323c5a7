"""Recording only inside the modules that hold softmax sites.

The search's recorded pass runs on every example.  A ``TorchDispatchMode``
costs a Python call for every aten op while it is active (a small
transformer runs ~140 ops per forward, its attention softmaxes ~3 of them),
so the recorder is entered only while a module that called a softmax on the
``inputs=`` example runs (its children included), and left when it returns
or raises.  Every softmax call inside those modules is still recorded, in
the same order, under the same paths.  A softmax in the model's own
``forward`` (the root) makes the whole pass recorded, as before.

The one difference from recording everything: a softmax that only some
inputs reach, in a module that called none on the example (a branch the
example did not take), is not seen by the search's pass; the outputs are
still checked, and the diagnosis probe still records every op.  The ops
saved are the model's outside those modules (for ``nn.TransformerEncoder``
the embedding, feed-forward blocks, norms and head: about a quarter of them,
since attention itself is most of the ops).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class _Scope:
    """Enters the recorder when the outermost scoped module starts, leaves
    it when that module returns (or raises: ``always_call``)."""

    def __init__(self, recorder: TorchDispatchMode) -> None:
        self.recorder = recorder
        self.depth = 0

    def enter(self, module: Any, args: Any) -> None:
        self.depth += 1
        if self.depth == 1:
            self.recorder.__enter__()  # type: ignore[no-untyped-call]

    def leave(self, module: Any, args: Any, output: Any) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.recorder.__exit__(None, None, None)  # type: ignore[no-untyped-call]


def scoped_modules(root: torch.nn.Module, root_name: str, site_modules: Iterable[str]) -> list[torch.nn.Module] | None:
    """The modules to record inside, or ``None`` when the whole forward must
    be recorded (a site in the root's own code, or a path not found)."""
    by_path = dict(root.named_modules())
    found: list[torch.nn.Module] = []
    for path in dict.fromkeys(site_modules):
        module = by_path.get(path) if path and path != root_name else None
        if module is None or module is root:
            return None
        found.append(module)
    return found


@contextmanager
def recording_inside(recorder: TorchDispatchMode, modules: list[torch.nn.Module] | None) -> Iterator[None]:
    """The recorder active while ``modules`` run (the whole block when ``None``)."""
    if modules is None:
        with recorder:
            yield
        return
    scope = _Scope(recorder)
    with ExitStack() as hooks:
        for module in modules:
            hooks.callback(module.register_forward_pre_hook(scope.enter).remove)
            hooks.callback(module.register_forward_hook(scope.leave, always_call=True).remove)
        try:
            yield
        finally:
            while scope.depth > 0:  # a forward that raised past a hook torch did not call
                scope.leave(None, None, None)
