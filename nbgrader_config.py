"""nbgrader configuration: the repository is the course root.

Instructor sources (solutions and hidden tests) live in solutions/<assignment>/, the generated
student release in exercises/<assignment>/. Submissions, autograded copies, feedback and the
gradebook are nbgrader's own working folders, git-ignored.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "backpropbook"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.root = __import__("os").path.dirname(__import__("os").path.abspath(__file__))

# Students keep their own outputs out of the release; the release is regenerated, not edited.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Importing torch on a loaded 2-core machine has taken over 10 s: leave room for it.
c.Execute.timeout = 120
