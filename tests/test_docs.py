"""The documentation is tested: every Python example on a page runs and prints what it
says, the API reference has a page for every public name, the notebooks point to the one
repository stated in mkdocs.yml, and the site builds with ``mkdocs build --strict``
(when MkDocs is installed: ``make docs`` installs it in ``.venv-docs``)."""
import importlib
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)

#: what each page's examples print, checked as the README's were before they moved here
EXPECTED = {
    "getting-started.md": ["(4, 32, 32, 1)", "Deletion: Sobol"],
    "guides/metrics.md": ["Sobol: deletion", "random: deletion"],
    # beyond images: an unused feature and the steps outside the window get exactly 0
    "guides/beyond-images.md": ["tabular (4, 3) unused feature: 0.0",
                                "time series (4, 32, 2) outside the window: 0.0",
                                "tokens (2, 6)", "word deletion"],
    # large jobs: a stream written to disk gives the maps of explain
    "guides/large-jobs.md": ["streamed maps (10, 16, 16, 1) equal explain: True"],
    # concepts: the planted pattern that drives the class is the top concept
    "guides/concepts.md": ["the top concept is pattern A: True",
                           "MACO image (32, 32, 3) transparency in [0, 1]: True"],
}


def hooks():
    """docs/hooks/sobol_docs.py (it needs MkDocs only to build, not to be read)."""
    spec = importlib.util.spec_from_file_location("sobol_docs", DOCS / "hooks" / "sobol_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pages_with_examples():
    return sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")
                  if PYTHON_BLOCK.search(path.read_text(encoding="utf-8")))


def test_the_checked_pages_have_examples():
    assert set(EXPECTED) <= set(pages_with_examples())


@pytest.mark.parametrize("page", pages_with_examples())
def test_page_examples_run(page, capsys):
    """A page's blocks run in order in one namespace, as a reader would paste them."""
    namespace = {"__name__": "__docs__"}
    for block in PYTHON_BLOCK.findall((DOCS / page).read_text(encoding="utf-8")):
        exec(compile(block, f"docs/{page}", "exec"), namespace)
    out = capsys.readouterr().out
    for expected in EXPECTED.get(page, []):
        assert expected in out, f"docs/{page} should print {expected!r}; it printed:\n{out}"
    if page == "guides/metrics.md":  # the scores its comments state are the ones it prints
        stated = re.findall(r"^# ((?:Sobol|random): deletion .*)$", (DOCS / page).read_text(),
                            flags=re.M)
        assert len(stated) == 2 and all(line in out for line in stated), (stated, out)


@pytest.mark.parametrize("package", hooks().PACKAGES)
def test_api_reference_reads_every_public_name(package):
    """The site's pages come from ``__all__`` read statically (the docs build has no
    TensorFlow); the names read must be the names the package exports when imported."""
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    if exported is None:  # a module without __all__: its public classes and functions
        exported = [name for name, value in vars(module).items()
                    if not name.startswith("_") and getattr(value, "__module__", None) == package
                    and callable(value)]
    assert sorted(hooks().public_names(package)) == sorted(exported)
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which it lacks"


def test_notebooks_point_to_the_repository_stated_once():
    repo = re.search(r"^repo_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    assert repo
    repo_path = repo.group(1).split("github.com/", 1)[1].rstrip("/")
    for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
        text = notebook.read_text(encoding="utf-8")
        addresses = re.findall(r"github(?:\.com)?/([\w.-]+/[\w.-]+)", text)
        assert addresses, f"{notebook.name} has no Colab badge or install line"
        assert set(addresses) == {repo_path}, (notebook.name, set(addresses))


def mkdocs_command():
    """The mkdocs of .venv-docs (``make docs``), or one on the PATH; None without."""
    local = ROOT / ".venv-docs" / "bin" / "mkdocs"
    if local.exists():
        return [str(local)]
    found = shutil.which("mkdocs")
    return [found] if found else None


@pytest.mark.slow
def test_site_builds_strictly(tmp_path):
    command = mkdocs_command()
    if command is None:
        pytest.skip("MkDocs is not installed: `make docs` installs it in .venv-docs")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(command + ["build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "WARNING" not in result.stderr, result.stderr[-5000:]
    # every public name has its page, with its docstring rendered by mkdocstrings
    for package, entries in hooks().api_pages().items():
        for name, path in entries:
            html = (site / path[:-len(".md")] / "index.html").read_text(encoding="utf-8")
            assert f'id="{package}.{name}"' in html, f"{path}: {package}.{name} not rendered"
    # method pages say what the method computes, its cost and its paper
    sobol = (site / "api" / "attributions" / "SobolAttributionMethod" / "index.html").read_text()
    assert "forward passes" in sobol and "arxiv.org/abs/2111.04138" in sobol
    # the notebooks are rendered with their stored outputs, not copied as files
    for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
        assert (site / "tutorials" / notebook.stem / "index.html").exists()
    # the command line's help is generated, for each subcommand
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for command_name in ("sobol-tf explain", "sobol-tf score"):
        assert f"{command_name} --help" in cli
    assert "--grid-size" in cli and "--nb-design" in cli
    # offline and private: no page loads anything from another host
    remote = re.compile(r"<(?:script|img|iframe|source|video|audio)\b[^>]*\bsrc=\"(?:https?:)?//"
                        r"|<link\b(?=[^>]*\brel=\"(?:stylesheet|preconnect|preload|modulepreload"
                        r"|icon|dns-prefetch)\")[^>]*\bhref=\"(?:https?:)?//")
    for html_file in site.rglob("*.html"):
        html = html_file.read_text(encoding="utf-8")
        loads = remote.findall(html)
        assert not loads, f"{html_file.relative_to(site)} loads from another host: {loads}"
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
