# The two commands a new clone needs: `make book` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Strict: a warning, a broken reference or a failing cell fails the build.
JB_FLAGS := -W -n --keep-going

.PHONY: venv book test release browser clean help

help:
	@echo "make book     build the executed book into _build/html"
	@echo "make test     run the whole test suite (builds the book from clean in a temp folder)"
	@echo "make release  regenerate exercises/ from solutions/ with nbgrader"
	@echo "make clean    remove _build and the venv"

venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "open _build/html/index.html"

release: $(STAMP)
	@for a in $$(ls solutions); do \
	  $(BIN)/nbgrader generate_assignment "$$a" --force --no-db --log-level=WARN || exit 1; done
	@echo "exercises/ regenerated from solutions/"

# Headless Chromium from Debian for the browser tests; installed only when missing.
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup

clean:
	rm -rf _build $(VENV)
