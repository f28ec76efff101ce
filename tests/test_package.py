import json
import subprocess
import sys

import pytest


def test_import_does_not_need_matplotlib():
    """Keras itself imports matplotlib when it is installed, so we check that sobol_tf
    imports with matplotlib made unimportable: no sobol_tf module needs it at import."""
    code = ("import sys; sys.modules['matplotlib'] = None;"
            "import sobol_tf, sobol_tf.attributions, sobol_tf.metrics, sobol_tf.plots; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


LAZY_PROBE = """
import json, sys
import sobol_tf
facts = {"tf_after_import": "tensorflow" in sys.modules,
         "dir_has_all": sorted(set(sobol_tf.__all__) - set(dir(sobol_tf))),
         "version": sobol_tf.__version__}
from sobol_tf import SobolAttributionMethod, errors
import sobol_tf.attributions as attributions
facts["same_class"] = SobolAttributionMethod is attributions.SobolAttributionMethod
facts["deletion"] = sobol_tf.metrics.Deletion.__name__
facts["resolved"] = [name for name in sobol_tf.__all__ if getattr(sobol_tf, name) is not None]
facts["errors"] = errors.InvalidArgumentError.__module__
try:
    sobol_tf.no_such_name
except AttributeError as exc:
    facts["missing"] = str(exc)
print(json.dumps(facts))
"""


@pytest.fixture(scope="module")
def lazy_facts():
    out = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_sobol_tf_does_not_import_tensorflow(lazy_facts):
    """`import sobol_tf` is cheap: TensorFlow loads when a public name is first used."""
    assert lazy_facts["tf_after_import"] is False
    assert lazy_facts["version"] == "0.1.0"


def test_public_names_resolve_lazily(lazy_facts):
    import sobol_tf

    assert lazy_facts["dir_has_all"] == []
    assert lazy_facts["same_class"] is True
    assert lazy_facts["deletion"] == "Deletion"
    assert lazy_facts["resolved"] == sobol_tf.__all__
    assert lazy_facts["errors"] == "sobol_tf.errors"
    assert lazy_facts["missing"] == "module 'sobol_tf' has no attribute 'no_such_name'"
