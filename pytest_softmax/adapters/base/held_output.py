"""Holding back what a block prints, native libraries included.

TensorFlow writes its start-up notices (absl's "before InitializeLog"
preamble, oneDNN, CUDA probes) straight to file descriptor 2 while it is
imported, before any log level applies.  When the plugin is the one
importing a framework or a user's factory file, that output is held back,
as pytest holds back what a test module prints while it is collected, and
written out only if the block fails.  Standard library only.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator

STDOUT, STDERR = 1, 2


@contextlib.contextmanager
def held_output() -> Iterator[list[str]]:
    """Everything written while the block runs, to Python's streams and to
    file descriptors 1 and 2 (where native libraries write), held instead
    of printed.  The list holds the text once the block has ended; if the
    block raises, the text is written to ``sys.stderr`` first (pytest then
    shows it under the test, as for a module that failed to import)."""
    held: list[str] = []
    python_level = io.StringIO()
    with tempfile.TemporaryFile() as native:
        _flush()
        try:
            saved = [(fd, os.dup(fd)) for fd in (STDOUT, STDERR)]
        except OSError:  # no such descriptor (a windowless process): hold Python's output only
            saved = []
        for fd, _ in saved:
            os.dup2(native.fileno(), fd)
        failed = True
        try:
            with contextlib.redirect_stdout(python_level), contextlib.redirect_stderr(python_level):
                yield held
            failed = False
        finally:
            _flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            native.seek(0)
            held.append(native.read().decode("utf-8", "replace") + python_level.getvalue())
            if failed and held[0]:
                sys.stderr.write(held[0])


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or replaced stream has nothing pending
            stream.flush()
