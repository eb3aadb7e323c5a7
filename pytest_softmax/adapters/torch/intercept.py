"""Seeing every softmax op of a forward pass without a Python call for the others.

A ``TorchDispatchMode`` costs a Python call for every aten op (about 140
for a 2-layer transformer encoder); only three ops matter to the search's
pass: ``aten._softmax``, ``aten._log_softmax`` and ``aten._safe_softmax``.
While a :class:`Held` or :class:`Reporting` block is open, a Python kernel
for just those three is registered on the ``BackendSelect`` dispatch key,
which is in every call's key set (``inference_mode`` and ``no_grad``
alike) and which no backend uses for these ops, so nothing of torch's is
overridden: the kernel reports the call to the :class:`Reporting` block
open on its thread, if any, then redispatches below itself to the
backend's own kernel.  Every other op runs at C++ speed.

The kernels are registered once per check (from its first recorded pass to
the end of the adapter's ``preserved_state``), not for each pass: a
registration changes the dispatcher's tables, and the next forward pays for
it (about 0.15 ms on the transformer of ``benchmarks/bench_torch.py``,
against 0.03 ms for the registration itself).  They are removed when the
outermost block ends, however it ends, so the process is left as it was.

Calls on threads with no :class:`Reporting` block, and softmax calls made
inside one being reported (``_safe_softmax`` is computed by an inner
``_softmax``), are passed through unreported: a ``TorchDispatchMode`` would
not have seen them either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

_ATEN = torch.ops.aten
# By name for the registration (the form torch 2.6, the minimum, takes), with the op to redispatch to.
INTERCEPTED = {"_softmax": _ATEN._softmax.default, "_log_softmax": _ATEN._log_softmax.default,
               "_safe_softmax": _ATEN._safe_softmax.default}
_KEY = "BackendSelect"
OnSoftmax = Callable[[Any, tuple[Any, ...], torch.Tensor], None]


class _Registration:
    """The process's one registration of the kernels, shared by nested blocks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.library: Any = None
        self.local = threading.local()  # .report: this thread's open reporting block's callback

    def acquire(self) -> None:
        with self.lock:
            if self.holders == 0:
                library = torch.library.Library("aten", "IMPL")  # type: ignore[no-untyped-call]
                try:
                    for name, op in INTERCEPTED.items():
                        library.impl(name, self._kernel(op), _KEY, with_keyset=True)  # type: ignore[no-untyped-call]
                except BaseException:
                    library._destroy()  # type: ignore[no-untyped-call]
                    raise
                self.library = library
            self.holders += 1

    def release(self) -> None:
        with self.lock:
            self.holders -= 1
            if self.holders == 0:
                library, self.library = self.library, None
                library._destroy()

    def _kernel(self, op: Any) -> Callable[..., Any]:
        below = torch._C.DispatchKey.BackendSelect
        local = self.local

        def reporting(keyset: Any, *args: Any) -> Any:
            report = getattr(local, "report", None)
            if report is None:
                return op.redispatch(keyset.remove(below), *args)
            local.report = None  # the call's own inner softmax ops are not calls of the model
            try:
                out = op.redispatch(keyset.remove(below), *args)
            finally:
                local.report = report
            report(op, args, out)
            return out

        return reporting


_REGISTRATION = _Registration()


class Held:
    """The kernels kept registered from the first :meth:`hold` to the end of
    the block: a check registers them once, on its first recorded pass, and a
    check that records nothing (no softmax inside the model) never does."""

    def __init__(self) -> None:
        self.held = False

    def hold(self) -> None:
        if not self.held:
            _REGISTRATION.acquire()
            self.held = True

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.held:
            self.held = False
            _REGISTRATION.release()


class Reporting:
    """Call ``report(op, args, output)`` for each softmax op run on this
    thread inside the block (registering the kernels if no outer block has).
    A class, not a generator: it is entered on every example."""

    def __init__(self, report: OnSoftmax) -> None:
        self.report = report
        self.outer: OnSoftmax | None = None

    def __enter__(self) -> Reporting:
        _REGISTRATION.acquire()
        local = _REGISTRATION.local
        self.outer = getattr(local, "report", None)
        local.report = self.report
        return self

    def __exit__(self, *exc: object) -> None:
        _REGISTRATION.local.report = self.outer
        _REGISTRATION.release()


def leftovers() -> list[str]:
    """The softmax ops that still have a kernel on the key this module uses
    (none outside a check): what a test asserts is left behind."""
    return [f"aten::{name}" for name in INTERCEPTED
            if torch._C._dispatch_has_kernel_for_dispatch_key(f"aten::{name}", _KEY)]
