"""Issue 12, item 1: every class sharing a name with Xplique takes Xplique's arguments.

XPLIQUE holds the constructor signatures of Xplique 2.0.2 (read from its source, written
as Python would print them). For each class, ours must take the same positional
arguments, in the same order, with the same defaults, and accept Xplique's keyword-only
arguments with the same defaults; every argument of ours that Xplique lacks must be
keyword-only, so no Xplique call can bind a value to the wrong argument.
DIFFERENT_DEFAULTS lists the defaults we chose differently, each with its reason.
"""
import ast
import inspect

import pytest

import sobol_tf.attributions
import sobol_tf.metrics

XPLIQUE = {
    # attributions
    "DeconvNet": "model, output_layer=None, batch_size=32, operator=None, reducer='mean'",
    "FEM": "model, batch_size=32, conv_layer=None, k=2.0",
    "GradCAM": "model, output_layer=None, batch_size=32, operator=None, conv_layer=None",
    "GradCAMPP": "model, output_layer=None, batch_size=32, operator=None, conv_layer=None",
    "GradientInput": "model, output_layer=None, batch_size=64, operator=None, reducer='mean'",
    "GuidedBackprop": "model, output_layer=None, batch_size=32, operator=None, reducer='mean'",
    "HsicAttributionMethod": "model, grid_size=8, nb_design=500, sampler=None, estimator=None, "
                             "perturbation_function='inpainting', batch_size=256, "
                             "estimator_batch_size=None, operator=None, *, nb_channels=1",
    "IntegratedGradients": "model, output_layer=None, batch_size=32, operator=None, "
                           "reducer='mean', steps=50, baseline_value=0.0",
    "KernelShap": "model, batch_size=64, operator=None, map_to_interpret_space=None, "
                  "nb_samples=800, ref_value=None",
    "Lime": "model, batch_size=None, operator=None, interpretable_model=<Ridge>, "
            "similarity_kernel=None, pertub_func=None, map_to_interpret_space=None, "
            "ref_value=None, nb_samples=150, distance_mode='euclidean', kernel_width=45.0, "
            "prob=0.5",
    "Occlusion": "model, batch_size=32, operator=None, patch_size=3, patch_stride=3, "
                 "occlusion_value=0.0",
    "Rise": "model, batch_size=32, operator=None, nb_samples=4000, grid_size=7, "
            "preservation_probability=0.5, mask_value=0.0",
    "Saliency": "model, output_layer=None, batch_size=32, operator=None, reducer='max'",
    "SmoothGrad": "model, output_layer=None, batch_size=32, operator=None, reducer='mean', "
                  "nb_samples=50, noise=0.2",
    "SobolAttributionMethod": "model, grid_size=8, nb_design=32, sampler=None, estimator=None, "
                              "perturbation_function='inpainting', batch_size=256, "
                              "operator=None, *, nb_channels=1",
    "SquareGrad": "model, output_layer=None, batch_size=32, operator=None, reducer='mean', "
                  "nb_samples=50, noise=0.2",
    "VarGrad": "model, output_layer=None, batch_size=32, operator=None, reducer='mean', "
               "nb_samples=50, noise=0.2",
    # metrics
    "AverageDropMetric": "model, inputs, targets=None, batch_size=64, operator=None, "
                         "activation=None",
    "AverageGainMetric": "model, inputs, targets=None, batch_size=64, operator=None, "
                         "activation=None",
    "AverageIncreaseMetric": "model, inputs, targets=None, batch_size=64, operator=None, "
                             "activation=None",
    "Deletion": "model, inputs, targets=None, batch_size=64, baseline_mode=0.0, steps=10, "
                "max_percentage_perturbed=1.0, operator=None, activation=None",
    "Insertion": "model, inputs, targets=None, batch_size=64, baseline_mode=0.0, steps=10, "
                 "max_percentage_perturbed=1.0, operator=None, activation=None",
    "MuFidelity": "model, inputs, targets=None, batch_size=64, grid_size=9, subset_percent=0.2, "
                  "baseline_mode=0.0, nb_samples=200, operator=None, activation=None",
}

#: (class, argument) -> our default, where we deliberately differ (see README, "Coming
#: from Xplique").
DIFFERENT_DEFAULTS = {
    # None builds the same Ridge(alpha=2) fit in numpy: scikit-learn stays optional
    ("Lime", "interpretable_model"): None,
}

REQUIRED = object()


def parse(text):
    """'a, b=1, *, c=2' -> ([(a, REQUIRED), (b, 1)], {c: 2}); '<Ridge>' stays a string."""
    positional, keyword_only, target = [], {}, None
    for part in text.split(", "):
        if part == "*":
            target = keyword_only
            continue
        name, _, default = part.partition("=")
        value = REQUIRED if not _ else (default if default.startswith("<") else ast.literal_eval(default))
        if target is None:
            positional.append((name, value))
        else:
            target[name] = value
    return positional, keyword_only


def ours(cls):
    positional, keyword_only = [], {}
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        default = REQUIRED if parameter.default is parameter.empty else parameter.default
        if parameter.kind == parameter.POSITIONAL_OR_KEYWORD:
            positional.append((parameter.name, default))
        elif parameter.kind == parameter.KEYWORD_ONLY:
            keyword_only[parameter.name] = default
        else:
            pytest.fail(f"{cls.__name__} takes *args or **kwargs: {parameter}")
    return positional, keyword_only


def our_class(name):
    for module in (sobol_tf.attributions, sobol_tf.metrics):
        if hasattr(module, name):
            return getattr(module, name)
    pytest.fail(f"sobol_tf has no {name}, which Xplique has")


@pytest.mark.parametrize("name", sorted(XPLIQUE))
def test_xplique_signature(name):
    expected_positional, expected_keyword_only = parse(XPLIQUE[name])
    positional, keyword_only = ours(our_class(name))
    expected = [(argument, DIFFERENT_DEFAULTS.get((name, argument), default))
                for argument, default in expected_positional]
    assert positional == expected, "positional arguments differ from Xplique's"
    for argument, default in expected_keyword_only.items():
        assert keyword_only.get(argument, REQUIRED) == default, argument
    extras = set(keyword_only) - set(expected_keyword_only)
    assert all(not argument.startswith("_") for argument in extras)


def test_the_table_has_no_stale_difference():
    for name, argument in DIFFERENT_DEFAULTS:
        assert argument in XPLIQUE[name]


# -- issue 16, item 1: every explainer, metric and concept class takes `strategy` -------
def _classes_running_a_model():
    """Every public class that scores a model: explainers, metrics with a model (the
    complexity metrics read maps only), MeGe, and CRAFT."""
    import sobol_tf.concepts
    from sobol_tf.attributions.base import Explainer
    from sobol_tf.metrics.base import ExplanationMetric

    classes = {}
    for module, base in ((sobol_tf.attributions, Explainer),
                         (sobol_tf.metrics, ExplanationMetric)):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, base):
                classes[name] = value
    classes["MeGe"] = sobol_tf.metrics.MeGe
    classes["CraftTf"] = sobol_tf.concepts.CraftTf
    classes["CraftManagerTf"] = sobol_tf.concepts.CraftManagerTf
    return classes


CLASSES_RUNNING_A_MODEL = _classes_running_a_model()


def test_the_strategy_list_holds_every_method():
    assert {"SobolAttributionMethod", "Rise", "Occlusion", "HsicAttributionMethod", "Lime",
            "KernelShap", "ExtremalPerturbation", "Saliency", "GradCAMPP", "FEM", "VarGrad",
            "DeconvNet", "Deletion", "Insertion", "MuFidelity", "AverageGainMetric",
            "AverageStability", "RandomLogitMetric", "ModelRandomizationMetric",
            "MeGe"} <= set(CLASSES_RUNNING_A_MODEL)


@pytest.mark.parametrize("name", sorted(CLASSES_RUNNING_A_MODEL))
def test_every_class_takes_a_keyword_only_strategy(name):
    """Not in Xplique: keyword-only, None by default (the enclosing scope's, else one
    device), so no Xplique call can bind a positional value to it."""
    parameter = inspect.signature(CLASSES_RUNNING_A_MODEL[name].__init__).parameters.get(
        "strategy")
    assert parameter is not None, f"{name} does not take strategy="
    assert parameter.kind is parameter.KEYWORD_ONLY and parameter.default is None


def _strategy_holders(name, cls, strategy):
    """The objects whose engine runs the forward passes of ``cls(..., strategy=...)``."""
    import numpy as np

    from tests.conftest import tiny_convnet

    model = tiny_convnet((8, 8, 3), 3)
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 0])
    if name == "MeGe":
        metric = cls(None, x, y, k_splits=2, models=[model, model], strategy=strategy)
        return metric._folds
    if name == "CraftTf":
        return [cls(model, model, 2, 4, 4, strategy=strategy)]
    if name == "CraftManagerTf":
        manager = cls(model, model, x, y, [0, 1], 2, 4, 4, strategy=strategy)
        return list(manager.craft_instances.values())
    if name == "ModelRandomizationMetric":
        from sobol_tf.metrics import ProgressiveLayerRandomization
        return [cls(model, x, y, ProgressiveLayerRandomization(1), strategy=strategy)]
    if name == "MuFidelity":
        return [cls(model, x, y, grid_size=2, strategy=strategy)]
    if "Metric" in name or name in ("Deletion", "Insertion", "AverageStability",
                                     "CausalFidelity"):
        return [cls(model, x, y, strategy=strategy)]
    return [cls(model, strategy=strategy)]


@pytest.mark.parametrize("name", sorted(set(CLASSES_RUNNING_A_MODEL) - {
    "Explainer", "BlackBoxExplainer", "WhiteBoxExplainer", "ExplanationMetric",
    "ExplainerMetric", "BaseAverageXMetric", "BaseRandomizationMetric"}))  # abstract
def test_the_strategy_reaches_the_engine(name):
    """Given outside any scope, the strategy is the one the engine reads (the
    explainers' maps under it are compared in tests/attributions/test_contract.py and
    tests/test_distribute.py)."""
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    holders = _strategy_holders(name, CLASSES_RUNNING_A_MODEL[name], strategy)
    assert holders and all(holder.strategy is strategy for holder in holders)
