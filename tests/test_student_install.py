"""The light student install, set up from scratch, holds nothing of the instructor's side and runs
every release notebook.

The environment is made in a temporary folder exactly as ``make student`` makes ``.venv-student``
(a fresh venv, ``pip install -r requirements-student.txt``, then ``pip install --no-deps`` of a
copy of the sources); nothing is reused from the project's ``.venv``. The package registry is
reached for those installs only. Each release notebook ``exercises/<a>/<a>.ipynb`` then runs in a
copy of its folder (which holds ``<a>.visible.json``) on a kernel of that environment: with the
instructor's answers pasted in every cell runs and every visible test passes; untouched, every
autograded test cell fails with an AssertionError that names the function, and nothing else fails.

A release notebook that imports torch (training) runs instead in the light env plus PyTorch: a
copy of the light env with ``requirements-student-torch.txt`` installed on top, as
``make student TORCH=1`` adds it to ``.venv-student`` (the copy keeps the light env light for the
tests above). Without torch, its NumPy tasks still run in the light env.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets.config.loader import PyFileConfigLoader

from backpropgrader import tasks
from conftest import REPO

pytestmark = [pytest.mark.student, pytest.mark.xdist_group("student_install")]

PYTHON = "python3.11"  # the Makefile's PYTHON
INSTRUCTOR_ONLY = ("torch", "nbgrader", "jupyter_book", "backpropgrader")
STUDENT_NEEDS = ("backpropbook", "numpy", "sympy", "matplotlib", "jupyterlab", "ipykernel")
SECRETS = ("BEGIN HIDDEN", "BEGIN SOLUTION", "backpropgrader")
MAX_ENV_MB = 700  # measured about 495 MB; the instructor's .venv, with torch, is about 1.4 GB
INSTALL_TIMEOUT_S = 600
CELL_TIMEOUT_S = 120  # the nbgrader_config's Execute.timeout
KERNEL = "student-python"
ASSIGNMENTS = sorted(p.name for p in (REPO / "exercises").iterdir()
                     if (p / f"{p.name}.ipynb").is_file())
MAX_TORCH_ENV_MB = 2000  # measured about 1.3 GB, most of it torch


def needs_torch(assignment):
    """True if the release notebook imports torch: it runs in the light env plus torch."""
    nb = nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    return any("import torch" in c.source for c in nb.cells if c.cell_type == "code")


def copy_sources(dest):
    """What ``pip install .`` builds from (pyproject.toml and src/), copied to ``dest``.

    pip builds in the source folder (``build/``, ``*.egg-info``): building from a copy keeps the
    repository untouched, and the packaging configuration still decides what goes in.
    """
    dest.mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(REPO / "src", dest / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def clean_env(**extra):
    """os.environ without what points at the project's venv or the grader's files."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "BACKPROPBOOK_VISIBLE_DIR")}
    env.update(extra)
    return env


def run(command, cwd, what):
    proc = subprocess.run(command, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=INSTALL_TIMEOUT_S)
    assert proc.returncode == 0, (f"{what} failed (exit {proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def folder_mb(folder):
    return sum(p.stat().st_size for p in Path(folder).rglob("*")
               if p.is_file() and not p.is_symlink()) / 2**20


class StudentEnv:
    """A venv made from requirements-student.txt and the package, with a kernelspec of its own."""

    def __init__(self, root):
        self.root = root
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        self.kernels = root / "kernels"
        self.seconds = {}

    def add_kernel(self):
        spec = self.kernels / KERNEL
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(self.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "student", "language": "python"}))
        return self

    def copy_with(self, root, requirements):
        """A copy of this env at ``root`` with ``requirements`` installed on top."""
        other = StudentEnv(root)
        start = time.monotonic()
        shutil.copytree(self.venv, other.venv, symlinks=True)
        other.seconds["copy"] = time.monotonic() - start
        start = time.monotonic()
        run([str(other.python), "-m", "pip", "--disable-pip-version-check", "install", "-q",
             "-r", str(requirements)], root, requirements.name)
        other.seconds[requirements.name] = time.monotonic() - start
        return other.add_kernel()

    def create(self):
        base = shutil.which(PYTHON)
        if base is None:
            pytest.fail(f"{PYTHON} not found: the student install needs Python 3.11")
        pip = [str(self.python), "-m", "pip", "--disable-pip-version-check", "install", "-q"]
        steps = [
            ("venv", [base, "-m", "venv", str(self.venv)]),
            ("requirements-student.txt", [*pip, "-r", str(REPO / "requirements-student.txt")]),
            ("pip install --no-deps <repo>",
             [*pip, "--no-deps", str(copy_sources(self.root / "source"))]),
        ]
        for what, command in steps:
            start = time.monotonic()
            run(command, self.root, what)
            self.seconds[what] = time.monotonic() - start
        return self.add_kernel()

    def python_json(self, code):
        """Run ``code`` (which prints one JSON value) with the env's Python, outside the repo."""
        return json.loads(run([str(self.python), "-c", code], self.root, "the student python"))

    def execute(self, nb, cwd):
        """Run every cell of ``nb`` in ``cwd`` on this env's kernel; errors stay in the outputs."""
        km = AsyncKernelManager(kernel_name=KERNEL,
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.kernels)]))
        client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, allow_errors=True,
                                resources={"metadata": {"path": str(cwd)}})
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        # cleanup_kc: shut the kernel down afterwards, though the client does not own its manager
        client.execute(cleanup_kc=True, env=clean_env(HOME=str(home), MPLBACKEND="Agg",
                                                      MPLCONFIGDIR=str(home / "mpl"),
                                                      IPYTHONDIR=str(home / "ipython")))
        return nb


@pytest.fixture(scope="module")
def student_env(tmp_path_factory):
    start = time.monotonic()
    env = StudentEnv(tmp_path_factory.mktemp("student")).create()
    print(f"\nstudent env set up in {time.monotonic() - start:.1f} s: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in env.seconds.items()))
    return env


@pytest.fixture(scope="module")
def torch_env(student_env, tmp_path_factory):
    env = student_env.copy_with(tmp_path_factory.mktemp("student-torch"),
                                REPO / "requirements-student-torch.txt")
    print("\nstudent env plus torch set up: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in env.seconds.items()))
    return env


def env_for(request, assignment):
    return request.getfixturevalue("torch_env" if needs_torch(assignment) else "student_env")


# ------------------------------------------------------------------------------ the install


def pins(path):
    """{normalised name: version} of the ``name==version`` lines of a requirements file."""
    out = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[name.strip().lower().replace("_", "-").replace(".", "-")] = version.strip()
    return out


def test_student_pins_are_the_instructor_pins():
    student, instructor = pins(REPO / "requirements-student.txt"), pins(REPO / "requirements.txt")
    assert {"numpy", "sympy", "matplotlib", "jupyterlab", "ipykernel"} <= set(student)
    differ = {n: (v, instructor[n]) for n, v in student.items()
              if n in instructor and instructor[n] != v}
    assert not differ, f"requirements-student.txt and requirements.txt disagree: {differ}"
    heavy = set(student) & {"torch", "nbgrader", "jupyter-book", "sphinx", "playwright"}
    assert not heavy, f"requirements-student.txt pulls instructor packages: {sorted(heavy)}"


def frozen_versions(env):
    """{normalised name: version} of the env's distributions, but for pip, setuptools and the
    package itself (checked apart)."""
    frozen = env.python_json(
        "import json, importlib.metadata as m; print(json.dumps("
        "{d.metadata['Name']: d.version for d in m.distributions()}))")
    frozen = {n.lower().replace("_", "-").replace(".", "-"): v for n, v in frozen.items()}
    for seed in ("pip", "setuptools"):  # what `python3.11 -m venv` puts in every venv
        frozen.pop(seed, None)
    assert frozen.pop("backpropbook") == "0.1.0"
    return frozen


def test_the_env_holds_exactly_the_pins(student_env):
    frozen = frozen_versions(student_env)
    assert frozen == pins(REPO / "requirements-student.txt"), (
        "the student env resolved something requirements-student.txt does not pin: "
        f"{set(frozen.items()) ^ set(pins(REPO / 'requirements-student.txt').items())}")


def test_the_torch_pins_are_the_instructor_pins():
    torch_pins, instructor = (pins(REPO / "requirements-student-torch.txt"),
                              pins(REPO / "requirements.txt"))
    assert torch_pins["torch"] == instructor["torch"] == "2.13.0"  # the CPU wheel, exactly
    assert {n: v for n, v in torch_pins.items() if instructor.get(n) != v} == {}
    assert "-r requirements-student.txt" in (REPO / "requirements-student-torch.txt").read_text()


def test_the_torch_env_adds_exactly_torch_and_its_pins(torch_env):
    frozen = frozen_versions(torch_env)
    assert frozen.pop("torch") == "2.13.0+cpu"  # the CPU build, not a CUDA one
    wanted = {**pins(REPO / "requirements-student.txt"),
              **pins(REPO / "requirements-student-torch.txt")}
    wanted.pop("torch")
    assert frozen == wanted, set(frozen.items()) ^ set(wanted.items())
    size = folder_mb(torch_env.venv)
    print(f"\nstudent env plus torch: {size:.0f} MB")
    assert size < MAX_TORCH_ENV_MB


def test_the_instructor_side_is_not_importable(student_env):
    found = student_env.python_json(
        "import json, importlib.util as u; print(json.dumps({m: u.find_spec(m) is not None "
        f"for m in {INSTRUCTOR_ONLY + STUDENT_NEEDS!r}}}))")
    assert [m for m in INSTRUCTOR_ONLY if found[m]] == []
    assert [m for m in STUDENT_NEEDS if not found[m]] == []


def test_the_installed_files_hold_no_hidden_tests(student_env):
    files = student_env.python_json(
        "import json, importlib.metadata as m; d = m.distribution('backpropbook'); "
        "print(json.dumps([[str(f), str(d.locate_file(f))] for f in d.files]))")
    tops = {Path(name).parts[0] for name, _ in files}
    assert tops == {"backpropbook", "backpropbook-0.1.0.dist-info"}, tops
    assert sum(name.endswith(".py") for name, _ in files) > 10
    found = [f"{name}: {secret!r}" for name, path in files
             if Path(path).is_file() for secret in SECRETS
             if secret.encode() in Path(path).read_bytes()]
    assert not found, "\n".join(found)


def test_the_env_is_light(student_env):
    size = folder_mb(student_env.venv)
    print(f"\nstudent env: {size:.0f} MB")
    assert 100 < size < MAX_ENV_MB, f"the student env takes {size:.0f} MB"


# ------------------------------------------------------------------------ the release notebooks


def nbgrader(cell):
    return cell.metadata.get("nbgrader", {})


def is_test_cell(cell):
    """An autograded test cell: graded code that is not an answer."""
    meta = nbgrader(cell)
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def code_stub():
    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    return config.ClearSolutions.code_stub["python"].splitlines()


def solution_regions(notebook):
    """{grade_id: [lines between ### BEGIN SOLUTION and ### END SOLUTION, per region]}."""
    regions = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code" or not nbgrader(cell).get("solution"):
            continue
        found, current = [], None
        for line in cell.source.splitlines():
            if line.strip() == "### BEGIN SOLUTION":
                current = []
            elif line.strip() == "### END SOLUTION":
                found.append(current)
                current = None
            elif current is not None:
                current.append(line)
        regions[nbgrader(cell)["grade_id"]] = found
    return regions


def paste(source, regions, stub, where):
    """``source`` with each code stub replaced by the next solution region."""
    lines, out, used = source.splitlines(), [], 0
    i = 0
    while i < len(lines):
        if [line.strip() for line in lines[i:i + len(stub)]] == stub:
            assert used < len(regions), f"{where}: more stubs than solution regions"
            out += regions[used]
            used, i = used + 1, i + len(stub)
        else:
            out.append(lines[i])
            i += 1
    assert used == len(regions), f"{where}: {len(regions)} solution regions, {used} stubs"
    return "\n".join(out)


def release(assignment, tmp_path):
    """A copy of the release folder (as a student gets it) and its notebook."""
    folder = shutil.copytree(REPO / "exercises" / assignment, tmp_path / assignment)
    assert (folder / f"{assignment}.visible.json").is_file(), (
        f"exercises/{assignment}/ has no {assignment}.visible.json: run `make release`")
    return folder, nbformat.read(folder / f"{assignment}.ipynb", as_version=4)


def errors(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def describe(cell):
    return nbgrader(cell).get("grade_id") or cell.source.splitlines()[:1]


def with_answers(assignment, nb):
    """``nb`` with the instructor's solution regions pasted in place of the code stubs."""
    regions = solution_regions(REPO / "solutions" / assignment / f"{assignment}.ipynb")
    stub = [line.strip() for line in code_stub()]
    pasted = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and nbgrader(cell).get("solution"):
            gid = nbgrader(cell)["grade_id"]
            assert gid in regions, f"release cell {gid} is not an answer cell of the source"
            cell.source = paste(cell.source, regions[gid], stub, f"{assignment}: {gid}")
            pasted += 1
    assert pasted == len(regions) > 0
    return nb


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_release_passes_with_the_instructor_answers(request, assignment, tmp_path):
    folder, nb = release(assignment, tmp_path)
    nb = with_answers(assignment, nb)
    start = time.monotonic()
    env_for(request, assignment).execute(nb, folder)
    print(f"\n{assignment} with the answers: {time.monotonic() - start:.1f} s")
    failed = [f"{describe(c)}: {e.ename}: {e.evalue}" for c in nb.cells for e in errors(c)]
    assert not failed, "\n".join(failed)
    tests_run = [c for c in nb.cells if is_test_cell(c)]
    assert tests_run and all(c.get("execution_count") for c in tests_run)
    noisy = [f"{describe(c)}: {o.text[:300]}" for c in tests_run for o in c.outputs
             if o.output_type == "stream" and o.name == "stderr"]
    assert not noisy, "nbgrader scores a test cell that writes to stderr 0:\n" + "\n".join(noisy)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_untouched_release_fails_every_test_cell_clearly(request, assignment, tmp_path):
    folder, nb = release(assignment, tmp_path)
    names = {t.grade_id: t.name for t in tasks.assignment(assignment).tasks}
    start = time.monotonic()
    env_for(request, assignment).execute(nb, folder)
    print(f"\n{assignment} untouched: {time.monotonic() - start:.1f} s")
    problems = []
    test_cells = [c for c in nb.cells if is_test_cell(c)]
    assert test_cells
    for cell in nb.cells:
        found, gid = errors(cell), nbgrader(cell).get("grade_id")
        if not is_test_cell(cell):
            problems += [f"{describe(cell)} (not a test cell): {e.ename}: {e.evalue}"
                         for e in found]
        elif gid not in names:
            problems.append(f"test cell {gid} has no task in tasks/{assignment}.py")
        elif [e.ename for e in found] != ["AssertionError"]:
            problems.append(f"{gid} should fail with one AssertionError, got "
                            f"{[f'{e.ename}: {e.evalue}' for e in found]}")
        elif names[gid] not in found[0].evalue:
            problems.append(f"{gid}'s message does not name {names[gid]}: {found[0].evalue!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS if needs_torch(a)])
def test_without_torch_the_numpy_tasks_still_run(student_env, assignment, tmp_path):
    """In the light env, a notebook that imports torch fails from its torch setup cell on;
    everything before it runs, its visible tests included."""
    folder, nb = release(assignment, tmp_path)
    student_env.execute(with_answers(assignment, nb), folder)
    first = next(i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and "import torch" in c.source)
    before = [c for c in nb.cells[:first] if c.cell_type == "code"]
    assert any(is_test_cell(c) for c in before)
    failed = [f"{describe(c)}: {e.ename}" for c in before for e in errors(c)]
    assert not failed, failed
    assert [e.ename for e in errors(nb.cells[first])] == ["ModuleNotFoundError"]
