"""The README's Python example runs as written."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "(4, 32, 32, 1)" in out
    assert "Sobol: deletion" in out and "random: deletion" in out
    # beyond images: an unused feature and the steps outside the window get exactly 0
    assert "tabular (4, 3) unused feature: 0.0" in out
    assert "time series (4, 32, 2) outside the window: 0.0" in out
    assert "tokens (2, 6)" in out and "word deletion" in out
    # large jobs: a stream written to disk gives the maps of explain
    assert "streamed maps (10, 16, 16, 1) equal explain: True" in out
    # concepts: the planted pattern that drives the class is the top concept
    assert "the top concept is pattern A: True" in out
    assert "MACO image (32, 32, 3) transparency in [0, 1]: True" in out


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
