"""Hidden-test logic of the book's nbgrader assignments, as plain library functions.

One module per assignment (:mod:`backpropbook.grading.scalar` for the scalar chapter). The
assignment's test cells stay one or two lines: they call a ``check_*`` function with the
student's function and a seed.

Rules every check follows, so that a future out-of-process grader can run the student's code in
a sandbox and keep these checks outside it:

- the student's function is called only with plain data (floats, ints, NumPy float64 arrays,
  strings such as activation names), or with one of the module's named test functions
  (``TEST_FUNCTIONS``), and only plain data it returns is inspected (a SymPy result crosses
  over as its ``srepr`` string);
- every check draws its cases from a seed (or ``numpy.random.Generator``), so a grade is
  reproducible;
- a failed check raises ``AssertionError`` with a message in the book's terms (which mistake,
  which layer), and a passing check writes nothing to stdout or stderr.
"""
