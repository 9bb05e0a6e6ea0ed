"""The instructor's grading command: ``python -m backpropgrader grade <assignment>``.

Run it from the course root (the repository; ``--course`` for another folder). It grades every
submission in ``submitted/<student>/<assignment>/`` in a sandbox, records the grades in nbgrader's
gradebook, writes feedback to ``feedback/`` and exports ``grades.csv``. The exit status is 0 only
when every submission was graded cleanly; otherwise one line per submission says why not.

One grading or export command works on a course at a time: another one waits for it (one line
says so), or with ``--no-wait`` refuses with exit status 2. SIGINT or SIGTERM stops the command
between two students' records (one line, exit status 128 + the signal). A kill may stop it
anywhere: running the command again grades everyone afresh.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from . import course as grading
from . import feedback
from .sandbox import SandboxUnavailable
from .submission import SubmissionError


def _bar(done, total, outcome, width=30, stream=sys.stderr):
    filled = width * done // max(total, 1)
    mark = "ok" if outcome.ok else ("!!" if outcome.status != "graded" else "~~")
    line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {mark} {outcome.student}"
    stream.write(line[:100].ljust(100) + ("\n" if done == total else ""))
    stream.flush()


def grade(args):
    course = grading.Course.from_config(args.course)
    course.notebooks(args.assignment)  # a wrong name fails at once, not after the wait
    with grading.hold(course, wait=not args.no_wait):
        return _grade(course, args)


def _grade(course, args):
    limits = grading.Limits(cell_timeout=args.cell_timeout, total_time=args.total_time,
                            memory=args.memory * 2**20)
    start = time.perf_counter()
    outcomes = grading.grade_assignment(
        course, args.assignment, jobs=args.jobs, students=args.student or None, limits=limits,
        progress=None if args.quiet else _bar)
    seconds = time.perf_counter() - start
    no_feedback = []
    if not args.no_feedback:
        for outcome in outcomes:
            if outcome.status == "graded":
                with grading.uninterrupted():  # nbgrader would take an interruption for a failure
                    try:
                        feedback.generate(course, args.assignment, outcome.student)
                    except feedback.FeedbackError as exc:
                        no_feedback.append(str(exc))
                grading.checkpoint("feedback")
    grading.export(course, args.assignment, course.root / args.csv)

    clean = [o for o in outcomes if o.ok]
    print(f"{args.assignment}: {len(outcomes)} submissions in {seconds:.1f} s "
          f"({args.jobs or os.cpu_count()} jobs): {len(clean)} graded cleanly, "
          f"{len(outcomes) - len(clean)} need a look; grades in {args.csv}")
    for outcome in outcomes:
        if not outcome.ok:
            print(f"  {outcome.student}: {outcome.summary()}")
    for line in no_feedback:
        print(f"  {line}")
    return 0 if len(clean) == len(outcomes) and not no_feedback else 1


def export(args):
    course = grading.Course.from_config(args.course)
    with grading.hold(course, wait=not args.no_wait):
        rows = grading.export(course, args.assignment, course.root / args.csv)
    print(f"{len(rows)} rows written to {args.csv}")
    return 0


def visible(args):
    """Write solutions/<a>/<a>.visible.json: what the release's visible tests compare with."""
    from backpropbook import codec, testfunctions

    from . import engine, tasks

    course = grading.Course.from_config(args.course)
    for name in args.assignment or tasks.NAMES:
        data = engine.visible_data(tasks.assignment(name).tasks)
        path = course.path(course.source, ".", name) / f"{name}.visible.json"
        path.write_text(codec.encode(data, functions=testfunctions.FUNCTIONS) + "\n")
        print(f"{path.relative_to(course.root)}: {len(data['tasks'])} tasks")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m backpropgrader",
        description="Grade untrusted nbgrader submissions in a sandbox, on top of nbgrader.")
    parser.add_argument("--course", default=".", type=Path,
                        help="the course root, holding nbgrader_config.py (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade every submission, write feedback, export grades.csv")
    g.add_argument("assignment", help="the assignment's name, as in solutions/<name>/")
    g.add_argument("--student", action="append", help="grade only this student (repeatable)")
    g.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                   help="submissions graded at once (default: one per core)")
    g.add_argument("--cell-timeout", type=float, default=30.0,
                   help="seconds a cell or a call may run (default: 30)")
    g.add_argument("--total-time", type=float, default=300.0,
                   help="seconds of sandbox time per submission (default: 300)")
    g.add_argument("--memory", type=int, default=4096,
                   help="MiB of address space per sandboxed process (default: 4096)")
    g.add_argument("--csv", default="grades.csv", help="export file (default: grades.csv)")
    g.add_argument("--no-feedback", action="store_true", help="do not write feedback/")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    g.set_defaults(run=grade)

    e = sub.add_parser("export", help="write grades.csv from the gradebook and grading status")
    e.add_argument("assignment")
    e.add_argument("--csv", default="grades.csv")
    e.set_defaults(run=export)

    for command in (g, e):
        command.add_argument("--no-wait", action="store_true",
                             help="if another grading command is working on the course, stop "
                             "at once (exit status 2) instead of waiting for it")

    v = sub.add_parser("visible", help="write the visible tests' data next to each instructor "
                       "notebook (make release runs it before nbgrader generate_assignment)")
    v.add_argument("assignment", nargs="*", help="default: every assignment")
    v.set_defaults(run=visible)

    args = parser.parse_args(argv)
    # nbgrader's gradebook runs the `alembic` script of this environment: find it on PATH.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    if args.run in (grade, export):
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, grading.on_signal)
    try:
        return args.run(args)
    except (SubmissionError, SandboxUnavailable, grading.CourseBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except grading.Interrupted as exc:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # off the progress bar's line
        print(f"stopped by {exc}: the grades recorded so far are kept; run the same command "
              "again to grade everyone", file=sys.stderr)
        return 128 + exc.signum


if __name__ == "__main__":
    sys.exit(main())
