"""Naming the layer at fault: ``diagnose`` (the entry point, run only after
a failure), ``rules`` (what each pattern of layer outputs means) and
``table`` (the "layers examined" table)."""
