"""Keras 3 (and TensorFlow SavedModel) support.

``formats`` (standard library) says which files hold Keras models;
``loading`` turns what the user passed into an adapter; ``safe_loading``
inspects a file before Keras runs anything in it; ``adapter`` and
``saved_model`` run models; ``probe`` looks inside them; ``errors`` reads
TensorFlow's exceptions; ``state`` puts back what a check could change.
Nothing is imported here: the registry reads ``formats`` at start-up.
"""
