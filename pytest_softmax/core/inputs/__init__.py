"""Inputs for a check: compact recipes (``recipes``) that numpy expands fast
(``fill``), the Hypothesis strategies that draw them (``strategies``), and
the batches a search runs (``batches``)."""
