"""Search power on a model that fails only on a narrow set of inputs.

A hand-written exp/sum softmax behind a Dense whose kernel is 1e-4 overflows
only when the inputs of a row sum past ~8.8e5: a check must reach
magnitudes near 1e6 (the largest scale, or a spike) to see it.  Prints in how
many of N seeds a check of 100 examples finds the failure, and the one-line
inputs it shrank to: first the check as it runs (the edge phase's constant
1e6 row finds it before the search), then the random search alone (a
profile without Phase.explicit turns the edge phase off), which is what
this measures.  Usage: python benchmarks/search_power.py 30
"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import keras, numpy as np
from hypothesis import Phase, settings
from pytest_softmax import check_softmax, SoftmaxInvariantError
class Naive(keras.layers.Layer):
    def call(self, x):
        e = keras.ops.exp(x); return e / keras.ops.sum(e, axis=-1, keepdims=True)
inp = keras.Input((8,)); d = keras.layers.Dense(3, kernel_initializer=keras.initializers.Constant(1e-4), bias_initializer="zeros")
model = keras.Model(inp, Naive()(d(inp)))
profiles = {"with the edge phase": list(Phase), "search alone": [p for p in Phase if p is not Phase.explicit]}
for label, phases in profiles.items():
    settings.register_profile("b", database=None, phases=phases); settings.load_profile("b")
    found, shrunk = 0, []
    for seed in range(int(sys.argv[1])):
        try:
            check_softmax(model, max_examples=100, seed=seed)
        except SoftmaxInvariantError as e:
            found += 1; shrunk.append(e.report.failing_input[0].description)
    print(f"{label}: found in {found}/{sys.argv[1]} seeds; shrunk to: {sorted(set(shrunk))[:4]}", flush=True)
