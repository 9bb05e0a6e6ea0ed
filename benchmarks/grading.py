"""Benchmark: the sandboxed grading command against plain, sequential ``nbgrader autograde``.

Both grade the same submissions of one assignment (default: 40 submissions of ``scalar``; most
honest, some with typical mistakes) in two fresh copies of a course, in the same run. Prints both
wall times, the speed-up, and whether every honest submission got the same score from both.

    .venv/bin/python benchmarks/grading.py [--students 40] [--jobs 2] [--assignment scalar]

This is a benchmark, not a test: it asserts nothing about time, and is not part of `make test`.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from nbgrader_course import (  # noqa: E402 -- importable only once tests/ is on the path
    build_course,
    cells_by_grade_id,
    make_submission,
    read,
    solution_ids,
    strip_solution_markers,
)

MISTAKES = {  # answer cell -> a typical wrong answer (of the scalar assignment)
    "log_sigmoid": "def log_sigmoid(z):\n    return -np.log(1 + np.exp(-np.asarray(z, float)))\n",
    "log_sigmoid_prime": "def log_sigmoid_prime(z):\n    return 1 - ACTIVATIONS['sigmoid'].g(z)\n",
}


def make_course(root, assignment, n):
    root = build_course(root, [assignment])
    shutil.copytree(REPO / "exercises" / assignment, root / "exercises" / assignment)
    source = read(REPO / "solutions" / assignment / f"{assignment}.ipynb")
    release = read(REPO / "exercises" / assignment / f"{assignment}.ipynb")
    answers = {g: strip_solution_markers(cells_by_grade_id(source)[g].source)
               for g in solution_ids(source)}
    honest = []
    for i in range(n):
        student = f"student{i:03d}"
        mine = dict(answers)
        if i % 4 == 3:  # every fourth submission makes a mistake
            gid = list(MISTAKES)[i // 4 % len(MISTAKES)]
            mine[gid] = MISTAKES[gid]
        else:
            honest.append(student)
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(make_submission(release, mine), str(folder / f"{assignment}.ipynb"))
        for data in (REPO / "exercises" / assignment).glob("*.visible.json"):  # handed in too
            shutil.copy(data, folder)
    return root, honest


def scores(root, assignment):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.assignment_submissions(assignment)}


def run(cmd, cwd):
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=os.pathsep.join([bindir, os.environ["PATH"]]))
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="scalar")
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    a = args.assignment
    with tempfile.TemporaryDirectory() as tmp:
        ours, honest = make_course(Path(tmp) / "ours", a, args.students)
        plain, _ = make_course(Path(tmp) / "plain", a, args.students)
        t_ours, r_ours = run([sys.executable, "-m", "backpropgrader", "grade", a,
                              "--jobs", str(args.jobs), "--quiet", "--no-feedback"], ours)
        # as an instructor would: the assignment in the gradebook (untimed), then autograde
        nbgrader = [sys.executable, "-m", "nbgrader"]
        prep = run([*nbgrader, "generate_assignment", a, "--force"], plain)[1]
        if prep.returncode:
            sys.exit(f"nbgrader generate_assignment failed:\n{prep.stderr[-2000:]}")
        t_plain, r_plain = run([*nbgrader, "autograde", a, "--create"], plain)
        if r_plain.returncode:
            print(f"nbgrader autograde exited {r_plain.returncode}:\n{r_plain.stderr[-2000:]}")
        s_ours, s_plain = scores(ours, a), scores(plain, a)
    same = [s for s in honest if s_ours.get(s) == s_plain.get(s)]
    differ = sorted(set(s_ours) | set(s_plain))
    differ = [s for s in differ if s_ours.get(s) != s_plain.get(s)]
    print(f"machine: {os.cpu_count()} cores; {args.students} submissions of {a!r} "
          f"({len(honest)} honest, {args.students - len(honest)} with a mistake)")
    print(f"sandboxed grader, {args.jobs} jobs:      {t_ours:7.1f} s  (exit {r_ours.returncode})")
    print(f"plain nbgrader autograde, sequential: {t_plain:7.1f} s  (exit {r_plain.returncode})")
    print(f"speed-up: {t_plain / t_ours:.2f}x")
    print(f"honest submissions with equal scores: {len(same)} of {len(honest)}")
    if differ:
        print("scores that differ (student: ours vs plain): "
              + ", ".join(f"{s}: {s_ours.get(s)} vs {s_plain.get(s)}" for s in differ))
    return 0 if len(same) == len(honest) else 1


if __name__ == "__main__":
    sys.exit(main())
