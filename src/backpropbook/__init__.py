"""backpropbook: the code behind the backpropagation teaching book (the student side).

Every implementation the chapters show lives here, once; none of it answers an autograded task
(tests/test_no_answers.py runs every callable here through every task's hidden checks):

- :mod:`backpropbook.activations` -- activation functions and their derivatives
- :mod:`backpropbook.scalar` -- forward and backward passes through a chain of single neurons
- :mod:`backpropbook.vector`, :mod:`backpropbook.layers`, :mod:`backpropbook.mlp`,
  :mod:`backpropbook.twolayer` -- one example, one layer over a minibatch, a whole perceptron
- :mod:`backpropbook.conventions` -- the other layouts (rows, PyTorch, transposed weights)
- :mod:`backpropbook.optim`, :mod:`backpropbook.training` -- gradient descent, Adam, training
- :mod:`backpropbook.gradcheck` -- finite differences and the gradient check
- :mod:`backpropbook.symbolic`, :mod:`backpropbook.symbolic_vector`,
  :mod:`backpropbook.symbolic_matrix` -- SymPy derivations the chapters verify the code against
- :mod:`backpropbook.oracles` -- torch.autograd references, in float64
- :mod:`backpropbook.figures` -- figures drawn offline with matplotlib
- :mod:`backpropbook.selfcheck`, :mod:`backpropbook.codec`, :mod:`backpropbook.testfunctions` --
  the assignments' visible tests, the plain-data codec, the named test functions
- :mod:`backpropbook.sphinx_offline` -- the book's offline MathJax
"""

__version__ = "0.1.0"
