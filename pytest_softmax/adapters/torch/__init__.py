"""PyTorch support: ``nn.Module``s, ``torch.export`` programs and ``.pt2`` files.

``formats`` (standard library) says which files and objects are PyTorch's;
``loading`` turns what the user passed into an adapter; ``signature``
learns the inputs from the test's example; ``recording`` sees every softmax
call at the aten level; ``adapter`` runs the model; ``state`` puts back
what a check could change.  Nothing is imported here: the registry reads
``formats`` at start-up.
"""
