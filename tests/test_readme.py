"""The README is a landing page: its example runs as written, it stays short, names the
two commands, carries no number that changes with each commit, and its links into the
documentation site lead to pages the site has."""
import pathlib
import re


ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def site_url():
    """The site's address, stated once in mkdocs.yml."""
    match = re.search(r"^site_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    assert match, "mkdocs.yml states no site_url"
    return match.group(1).rstrip("/") + "/"


def test_readme_example_runs(capsys):
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    assert blocks, "README has no python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "(4, 32, 32, 1)" in out
    score = re.search(r"Deletion: Sobol (\d\.\d{3})", out)
    assert score, out
    assert 0.0 <= float(score.group(1)) <= 1.0  # an area under a softmax probability


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_readme_is_at_most_15_kb():
    size = README.stat().st_size
    assert size <= 15_000, f"README.md is {size} bytes; move content into docs/ pages"


def test_readme_has_no_number_that_changes_with_each_commit():
    text = README.read_text()
    assert not re.search(r"\b\d[\d,]* tests\b", text), "a test count goes stale"
    assert not re.search(r"\b\d+ ?min \d+ ?s\b", text), "a test timing goes stale"


def test_readme_links_into_the_site_lead_to_pages():
    """Each link to the site names a page of docs/ or an API page (a name in the
    package's ``__all__``), as the build makes them."""
    hooks = _hooks()
    site = site_url()
    links = re.findall(r"\]\(" + re.escape(site) + r"([^)\s]*)\)", README.read_text())
    assert len(links) > 20, "README's method and metric tables link to their pages"
    api = {path[:-len(".md")] + "/" for entries in hooks.api_pages().values()
           for _, path in entries}
    for link in links:
        page = link.split("#")[0]
        if page == "":
            continue
        if page in api:
            continue
        source = ROOT / "docs" / (page.rstrip("/") + ".md")
        index = ROOT / "docs" / page / "index.md"
        assert source.exists() or index.exists(), f"README links to {site}{link}: no such page"


def _hooks():
    """docs/hooks/sobol_docs.py, which reads the packages' ``__all__`` without importing
    them (MkDocs need not be installed)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "sobol_docs", ROOT / "docs" / "hooks" / "sobol_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
