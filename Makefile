# The two commands a new clone needs: `make book` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Strict: a warning, a broken reference or a failing cell fails the build.
JB_FLAGS := -W -n --keep-going

.PHONY: venv student lab book test release grade bench bench-grading debian-deps clean help

help:
	@echo "make book     build the executed book into _build/html"
	@echo "make student  the light student install in .venv-student (no torch, no grader)"
	@echo "make student TORCH=1  the same plus PyTorch (the CPU wheel), for the training assignment"
	@echo "make lab A=<assignment>  open exercises/<assignment>/<assignment>.ipynb in JupyterLab"
	@echo "make test     run the whole test suite (builds the book from clean in a temp folder)"
	@echo "make release  regenerate exercises/ from solutions/ with nbgrader"
	@echo "make grade A=<assignment>  grade submitted/*/<assignment> in a sandbox, write feedback and grades.csv"
	@echo "make bench    time one MLP training step: the package's NumPy code against torch.autograd"
	@echo "make clean    remove _build and the venvs"

venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# The instructor side (src/backpropgrader: the grader, the hidden checks) is no distribution:
	@# it is put on the venv's path here, so that it never reaches a student's install.
	$(BIN)/python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'backpropgrader.pth').write_text('$(CURDIR)/src\\n')"
	@touch $@

# The student side only: numpy, sympy, matplotlib, JupyterLab and a copy of the package
# (`--no-deps`, not editable); nothing of the instructor's side.
STUDENT_VENV  := .venv-student
STUDENT_STAMP := $(STUDENT_VENV)/.installed
student: $(STUDENT_STAMP)
$(STUDENT_STAMP): requirements-student.txt pyproject.toml $(shell find src/backpropbook -name '*.py')
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(STUDENT_VENV)
	$(STUDENT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-student.txt
	@# pip builds in ./build: a stale copy there could slip a deleted module into the wheel.
	rm -rf build
	$(STUDENT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps .
	rm -rf build
	@touch $@
	@echo "set up: open an assignment with  make lab A=scalar"

# TORCH=1 adds PyTorch to the student install (requirements-student-torch.txt), for the
# assignments whose notebooks use it; `make lab` adds it by itself for such a notebook.
STUDENT_TORCH_STAMP := $(STUDENT_VENV)/.installed-torch
ifneq ($(TORCH),)
student: $(STUDENT_TORCH_STAMP)
endif
$(STUDENT_TORCH_STAMP): requirements-student-torch.txt $(STUDENT_STAMP)
	$(STUDENT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-student-torch.txt
	@touch $@

lab:
	@test -f "exercises/$(A)/$(A).ipynb" || { echo "usage: make lab A=<assignment>, one of: $$(ls exercises | tr '\n' ' ')"; exit 2; }
	@$(MAKE) --no-print-directory student $(if $(shell grep -ls 'import torch' "exercises/$(A)/$(A).ipynb"),TORCH=1)
	$(STUDENT_VENV)/bin/jupyter lab "exercises/$(A)/$(A).ipynb"

book: $(STAMP)
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "open _build/html/index.html"

release: $(STAMP)
	$(BIN)/python -m backpropgrader visible
	@for a in $$(ls solutions); do \
	  $(BIN)/nbgrader generate_assignment "$$a" --force --no-db --log-level=WARN || exit 1; done
	@echo "exercises/ regenerated from solutions/"

# Grade every submission of assignment A (see `.venv/bin/python -m backpropgrader grade --help`;
# extra options in GRADE_FLAGS, e.g. GRADE_FLAGS="--jobs 4 --student alice").
grade: $(STAMP) debian-deps
	@test -n "$(A)" || { echo "usage: make grade A=<assignment> [GRADE_FLAGS=...]"; exit 2; }
	$(BIN)/python -m backpropgrader grade "$(A)" $(GRADE_FLAGS)

# Benchmark (not a test): one forward + backward MLP step, NumPy (the package) against torch.autograd.
bench: $(STAMP)
	$(BIN)/python benchmarks/mlp.py

# Benchmark (not a test): the sandboxed grader against plain sequential nbgrader autograde.
bench-grading: $(STAMP) debian-deps
	$(BIN)/python benchmarks/grading.py

# From Debian, installed only when missing: chromium (browser tests), bubblewrap and setpriv
# (the grading sandbox). Needs root, as on CI.
DEBIAN_DEPS := chromium:chromium bwrap:bubblewrap setpriv:util-linux
debian-deps:
	@missing=""; for pair in $(DEBIAN_DEPS); do \
	  command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing from Debian:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	    || { echo "error: could not install$$missing (run as root, or install them yourself)"; exit 1; }; \
	fi

test: $(STAMP) debian-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup

clean:
	rm -rf _build $(VENV) $(STUDENT_VENV)
