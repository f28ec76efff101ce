import subprocess
import sys


def test_import_does_not_need_matplotlib():
    """Keras itself imports matplotlib when it is installed, so we check that sobol_tf
    imports with matplotlib made unimportable: no sobol_tf module needs it at import."""
    code = ("import sys; sys.modules['matplotlib'] = None;"
            "import sobol_tf, sobol_tf.attributions, sobol_tf.metrics, sobol_tf.plots; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
