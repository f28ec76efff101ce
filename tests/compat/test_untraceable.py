"""Issue 12, item 3: any Python callable mapping a batch array to scores is a model.

A real scikit-learn classifier (its ``predict_proba`` works on numpy arrays only) runs on
the eager path of every black-box explainer and gives the maps of the same classifier
written in TensorFlow (which runs on the compiled path): the ground truth here.
"""
import warnings

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import (HsicAttributionMethod, Occlusion, Rise,
                                   SobolAttributionMethod)
from sobol_tf.errors import SobolTFWarning

sklearn = pytest.importorskip("sklearn")

EXPLAINERS = {
    "sobol": lambda model: SobolAttributionMethod(model, 4, 16, batch_size=64),
    "hsic": lambda model: HsicAttributionMethod(model, grid_size=4, nb_design=32,
                                                batch_size=64),
    "rise": lambda model: Rise(model, 64, nb_samples=48, grid_size=3, seed=0),
    "occlusion": lambda model: Occlusion(model, 64, patch_size=2, patch_stride=2),
}


@pytest.fixture(scope="module")
def digits_classifier():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)
    classifier = LogisticRegression(max_iter=300).fit(images.reshape(len(images), -1),
                                                      data.target)
    weights = tf.constant(classifier.coef_.T, tf.float32)
    bias = tf.constant(classifier.intercept_, tf.float32)

    def graph_model(x):  # the same classifier, traceable
        return tf.nn.softmax(tf.reshape(x, (-1, 64)) @ weights + bias)

    def sklearn_model(x):
        return classifier.predict_proba(np.asarray(x).reshape(len(x), -1))

    inputs = images[-3:, :, :, None]
    return sklearn_model, graph_model, inputs, data.target[-3:]


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_a_scikit_learn_classifier_is_explained_like_its_tensorflow_twin(
        name, digits_classifier):
    sklearn_model, graph_model, inputs, labels = digits_classifier
    expected = np.asarray(EXPLAINERS[name](graph_model)(inputs, labels))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = np.asarray(EXPLAINERS[name](sklearn_model)(inputs, labels))
    ours = [w for w in caught if issubclass(w.category, SobolTFWarning)]
    assert len(ours) == 1 and "eagerly" in str(ours[0].message)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(maps, expected, atol=1e-5 * np.abs(expected).max())


def test_the_user_can_ask_for_the_eager_path_up_front(digits_classifier):
    sklearn_model, graph_model, inputs, labels = digits_classifier
    explainer = EXPLAINERS["sobol"](sklearn_model)
    explainer.run_eagerly = True
    with warnings.catch_warnings():
        warnings.simplefilter("error", SobolTFWarning)  # asked for: no warning
        maps = np.asarray(explainer(inputs, labels))
    expected = np.asarray(EXPLAINERS["sobol"](graph_model)(inputs, labels))
    np.testing.assert_allclose(maps, expected, atol=1e-5 * np.abs(expected).max())


def test_an_estimator_object_with_predict_proba_is_a_model(digits_classifier):
    """As in Xplique, a non-callable object with ``predict_proba`` (a scikit-learn
    pipeline here, which flattens the images itself) is run through that method."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sobol_tf.metrics import Deletion

    sklearn_model, graph_model, inputs, labels = digits_classifier
    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    pipeline = make_pipeline(FunctionTransformer(lambda x: np.reshape(x, (len(x), -1))),
                             LogisticRegression(max_iter=300)).fit(images, data.target)
    assert not callable(pipeline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SobolTFWarning)
        maps = np.asarray(EXPLAINERS["occlusion"](pipeline)(inputs, labels))
        explanations = np.random.default_rng(0).normal(size=inputs.shape[:3])
        score = Deletion(pipeline, inputs, labels, steps=4)(explanations)
    np.testing.assert_allclose(maps, np.asarray(EXPLAINERS["occlusion"](graph_model)(
        inputs, labels)), atol=1e-5)
    assert score == pytest.approx(Deletion(graph_model, inputs, labels, steps=4)(
        explanations), abs=1e-5)


@pytest.mark.parametrize("name", ["sobol", "rise", "occlusion"])
def test_explainers_have_xpliques_inference_functions(name, digits_classifier):
    """``inference_function`` is the operator and ``batch_inference_function`` scores a
    whole set of inputs batch by batch, for traceable and untraceable models alike."""
    sklearn_model, graph_model, inputs, labels = digits_classifier
    one_hot = np.eye(10, dtype=np.float32)[labels]
    expected = np.sum(np.asarray(graph_model(inputs)) * one_hot, axis=-1)
    explainer = EXPLAINERS[name](graph_model)
    np.testing.assert_allclose(
        np.asarray(explainer.inference_function(graph_model, inputs, one_hot)), expected,
        rtol=1e-6)
    for model in (graph_model, sklearn_model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SobolTFWarning)
            scores = explainer.batch_inference_function(model, inputs, one_hot, 2)
        np.testing.assert_allclose(np.asarray(scores), expected, rtol=1e-5)
