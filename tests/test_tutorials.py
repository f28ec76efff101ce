"""Every tutorial notebook runs top to bottom offline (its fallback path), without error.

The notebooks are stored without outputs; the test executes them in a fresh kernel with
``SOBOL_TF_OFFLINE=1`` and the repository on ``PYTHONPATH``, so that they use the small
models they train here (on scikit-learn's digits for 01-03 and 05; on data built in
the notebook for 04) and this checkout of sobol_tf.
"""
import json
import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))
COLAB = "https://colab.research.google.com/github/sobol-tf/sobol_tf/blob/main/tutorials/"
EXPECTED = ["01_getting_started.ipynb", "02_sobol_knobs.ipynb", "03_metrics.ipynb",
            "04_beyond_images.ipynb", "05_concepts.ipynb", "06_eva_and_channels.ipynb"]
DIGITS = "model: a small convnet trained on handwritten digits (offline)"
#: lines each notebook prints on its offline path; for 04 and 05, their checks against
#: ground truth
PRINTED = {
    "01_getting_started.ipynb": [DIGITS],
    "02_sobol_knobs.ipynb": [DIGITS],
    "03_metrics.ipynb": [DIGITS],
    "04_beyond_images.ipynb": [
        "same ranking of the informative features as the exact indices: [True, True, True, True]",
        "noise features get 0: True",
        "padding gets 0: True",
    ],
    "05_concepts.ipynb": [
        DIGITS,
        "h(g(x)) equals the model's logits: True",
        "removing the top concept lowers the logit more than removing the last: True",
        "same importances with the same seed: True",
        "every MACO image scores above all the random images: True",
    ],
    "06_eva_and_channels.ipynb": [
        DIGITS,
        "sampled outputs inside the IBP bounds: True",
        "deterministic: True",
        "top channels keep more of the logit than random ones on every image: True",
    ],
}


def test_the_tutorials_are_there():
    assert [path.name for path in TUTORIALS] == EXPECTED


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.name)
def test_stored_without_outputs_with_a_colab_link(path):
    notebook = json.loads(path.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    assert f"({COLAB}{path.name})" in "".join(notebook["cells"][0]["source"])
    install = "".join(code[0]["source"])
    assert 'if "google.colab" in sys.modules:' in install and "pip install" in install


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.name)
def test_runs_offline_without_error(path, monkeypatch):
    monkeypatch.setenv("SOBOL_TF_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "agg")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / "tutorials")}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    text = "".join(output.get("text", "") for output in outputs)
    for line in PRINTED[path.name]:
        assert line in text
    assert any("image/png" in output.get("data", {}) for output in outputs), "no plot drawn"
