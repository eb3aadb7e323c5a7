"""Framework adapters: the only place that imports a deep-learning framework.

``base`` holds the boundary: the :class:`~.base.ModelAdapter` protocol the
engine calls, the optional capabilities (probing layers, adopting a
signature, preserving state, explaining errors) as protocols, and the specs
passed across.  ``registry`` turns what the user passed into an adapter and
knows, without importing any framework, which files hold models.  Each
framework is one folder (``keras/``) plus one registry entry.

Nothing is imported here: the pytest layer reads ``registry`` at start-up.
"""
