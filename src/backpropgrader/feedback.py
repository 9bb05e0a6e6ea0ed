"""Feedback for one student: nbgrader's HTML, with hidden tests removed and maths offline.

nbgrader's ``generate_feedback`` renders the autograded notebook. We add its
``ClearHiddenTests`` preprocessor, so test cells show only their visible part (the outputs are
already the checks' one-line messages, with no traceback into hidden code), and we swap the
MathJax 2 that the feedback template loads from a CDN for MathJax 3 copied beside the page.
"""

import re
import shutil
from pathlib import Path

from backpropbook.sphinx_offline import MATHJAX_ES5

MATHJAX_FILE = "mathjax-tex-svg.js"  # SVG output: one self-contained file, no fonts to fetch
_CDN_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_LOCAL_MATHJAX = f"""<!-- MathJax 3, served beside this page (works offline) -->
<script>
window.MathJax = {{
  tex: {{inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
        displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
        processEscapes: true}},
  svg: {{fontCache: "global"}}
}};
</script>
<script src="{MATHJAX_FILE}"></script>"""


class FeedbackError(Exception):
    """Feedback could not be written; the message is one line."""


def offline_mathjax(html_path):
    """Point one feedback page at a local MathJax 3 instead of the CDN. Returns True if changed."""
    html_path = Path(html_path)
    text = html_path.read_text(encoding="utf-8")
    new, count = _CDN_BLOCK.subn(lambda _: _LOCAL_MATHJAX, text)
    if count:
        html_path.write_text(new, encoding="utf-8")
        shutil.copyfile(MATHJAX_ES5 / "tex-svg.js", html_path.parent / MATHJAX_FILE)
    return bool(count)


def generate(course, assignment, student):
    """Write ``feedback/<student>/<assignment>/*.html`` for one graded submission."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.apps import NbGraderAPI
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.course_id = course.course_id
    config.CourseDirectory.source_directory = course.source
    config.CourseDirectory.release_directory = course.release
    config.GenerateFeedback.preprocessors = [ClearHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
    result = NbGraderAPI(config=config).generate_feedback(assignment, student, force=True)
    if not result.get("success"):
        last = (result.get("error") or result.get("log")
                or "nbgrader failed").strip().splitlines()[-1]
        raise FeedbackError(f"feedback for {student}: {last}")
    folder = course.path("feedback", student, assignment)
    pages = sorted(folder.glob("*.html"))
    for page in pages:
        offline_mathjax(page)
    return pages
