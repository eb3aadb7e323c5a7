"""The framework-neutral engine: settings in, a report out.

``api`` (``check_softmax``) and ``search`` run a check; ``preflight`` decides
whether a model can be checked at all; ``invariants`` measures the rule on
numpy arrays; ``inputs/`` builds the batches Hypothesis searches over;
``sites`` checks softmaxes inside the model; ``diagnosis/`` names the layer
at fault; ``report`` (data) and ``render`` (text) say what was found.  The
engine speaks to a model only through :mod:`pytest_softmax.adapters.base`.

Nothing is imported here, so that the pytest layer can use the plain data
modules (``report``, ``kinds``) without pulling in numpy or Hypothesis.
"""
