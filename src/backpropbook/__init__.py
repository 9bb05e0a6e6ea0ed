"""backpropbook: the code behind the backpropagation teaching book.

Every implementation the chapters show lives here, once:

- :mod:`backpropbook.activations` -- activation functions and their derivatives
- :mod:`backpropbook.scalar` -- forward and backward passes through a chain of single neurons
- :mod:`backpropbook.gradcheck` -- centered finite differences and the gradient check
- :mod:`backpropbook.symbolic` -- SymPy derivations the chapters verify the code against
- :mod:`backpropbook.oracles` -- torch.autograd references, in float64
- :mod:`backpropbook.figures` -- figures drawn offline with matplotlib
"""

__version__ = "0.1.0"
