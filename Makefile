# Every target installs what it needs in a virtual environment in the repo (.venv),
# so a machine with only Python 3 and pip can run them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: install test demo bench bench-quality bench-scale docs docs-serve clean

$(VENV)/.installed: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# two pytest-xdist workers: the suite takes about 3 minutes on a 2-core machine
test: install
	$(PY) -m pytest -x -q -n 2

demo: install
	$(PY) tutorials/demo.py --out outputs/demo

bench: install
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_eager.py
	$(PY) benchmarks/bench_concepts.py

bench-quality: install
	$(PY) benchmarks/bench_quality.py
	$(PY) benchmarks/bench_quality_beyond.py
	$(PY) benchmarks/bench_stability.py
	$(PY) benchmarks/bench_extremal_torchray.py

# large jobs (issue 16): devices, streaming, the command line on a folder; quick sizes,
# tables printed (bench_cli_scale's goes to outputs/, not over benchmarks/results)
bench-scale: install
	$(PY) benchmarks/bench_distribute.py --quick
	$(PY) benchmarks/bench_streaming.py --quick
	$(PY) benchmarks/bench_cli_scale.py --images 300 --out outputs/cli_scale.md

# the documentation site: its own environment (.venv-docs, MkDocs and its plugins only:
# the API pages are read from the source, so no TensorFlow), a strict build into site/
DOCS_VENV ?= .venv-docs
DOCS_PY := $(DOCS_VENV)/bin/python
export NO_MKDOCS_2_WARNING := 1

$(DOCS_VENV)/.installed: setup.cfg
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_PY) -c 'import configparser; c = configparser.ConfigParser(); c.read("setup.cfg"); print(c["options.extras_require"]["docs"].strip())' > $(DOCS_VENV)/requirements.txt
	$(DOCS_PY) -m pip install -q -r $(DOCS_VENV)/requirements.txt
	touch $@

docs: $(DOCS_VENV)/.installed
	$(DOCS_PY) -m mkdocs build --strict --clean

docs-serve: $(DOCS_VENV)/.installed
	$(DOCS_PY) -m mkdocs serve

clean:
	rm -rf $(VENV) $(DOCS_VENV) site outputs *.egg-info
