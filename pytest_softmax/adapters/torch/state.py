"""What a check could change on the user's module, put back afterwards.

The module runs in ``eval()`` during the check (dropout off, batch-norm
statistics used, not updated); every module's training flag, every
parameter and buffer, and the device are restored when the check ends, and
a run note says when ``forward`` changed any of them (a buffer updated in
inference, a module moved to another device).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

import torch

from ..base import NonFiniteWeight


def device_of(module: torch.nn.Module) -> torch.device:
    for tensor in chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


def computes_in_float16(module: torch.nn.Module) -> bool:
    return any(p.dtype == torch.float16 for p in chain(module.parameters(), module.buffers()))


@dataclass
class SavedState:
    training: dict[torch.nn.Module, bool]
    values: dict[str, torch.Tensor]
    device: torch.device

    def changed(self, module: torch.nn.Module) -> list[str]:
        current = dict(chain(module.named_parameters(), module.named_buffers()))
        return [name for name, saved in self.values.items()
                if name not in current or current[name].shape != saved.shape
                or not torch.equal(current[name].detach().to(saved.device), saved)]

    def changes(self, module: torch.nn.Module) -> list[str]:
        """Run notes on what forward changed so far (put back at the end)."""
        notes = []
        changed = self.changed(module)
        if changed:
            shown = ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else "")
            notes.append(f"forward changed {len(changed)} parameter(s)/buffer(s) of the module during the check "
                         f"({shown}); they were restored afterwards")
        moved = device_of(module)
        if moved != self.device:
            notes.append(f"the module moved from {self.device} to {moved} during the check; it was moved back")
        return notes


@contextmanager
def preserved(module: torch.nn.Module, remember: Callable[[SavedState | None], None]) -> Iterator[None]:
    saved = SavedState(
        training={m: m.training for m in module.modules()},
        values={name: t.detach().clone() for name, t in chain(module.named_parameters(), module.named_buffers())},
        device=device_of(module),
    )
    remember(saved)
    try:
        module.eval()
    except NotImplementedError:  # an exported program's module: export fixed its mode already
        pass
    try:
        yield
    finally:
        remember(None)
        if device_of(module) != saved.device:
            module.to(saved.device)
        current = dict(chain(module.named_parameters(), module.named_buffers()))
        with torch.no_grad():
            for name in saved.changed(module):
                if name in current and current[name].shape == saved.values[name].shape:
                    current[name].copy_(saved.values[name])
        for child, flag in saved.training.items():
            if child.training != flag:
                child.training = flag


def nonfinite_weights(module: torch.nn.Module, root_name: str) -> list[NonFiniteWeight]:
    """Every parameter or buffer holding NaN/Inf, by the module that owns it."""
    owners = dict(module.named_modules())
    found = []
    for name, tensor in chain(module.named_parameters(), module.named_buffers()):
        if not tensor.is_floating_point() and not tensor.is_complex():
            continue
        values = tensor.detach()
        nan, inf = int(torch.isnan(values).sum()), int(torch.isinf(values).sum())
        if nan or inf:
            owner_path = name.rpartition(".")[0]
            owner = owners.get(owner_path, module)
            found.append(NonFiniteWeight(owner_path or root_name, type(owner).__name__, name, nan, inf,
                                         int(values.numel()), trainable=bool(getattr(tensor, "requires_grad", False))))
    return found
