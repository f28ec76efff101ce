"""Inputs at the API boundary (sobol_tf._utils.data): datasets, the batch axis, dtypes."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf._utils import data as data_module
from sobol_tf._utils.data import prepare_inputs_targets
from sobol_tf.attributions import Occlusion
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, ModelCallError
from sobol_tf.metrics import Deletion

N, H, W, C = 3, 8, 8, 3


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(N, H, W, C)).astype(np.float32)


def linear(x):
    return tf.stack([tf.reduce_sum(x, axis=[1, 2, 3]), tf.reduce_mean(x, axis=[1, 2, 3])], -1)


@pytest.fixture(scope="module")
def keras_model():
    return keras.Sequential([keras.Input((H, W, C)), keras.layers.Flatten(),
                             keras.layers.Dense(2)])


# -- the forgotten batch axis (issue 11, item 6) ---------------------------------------------
def test_a_missing_batch_axis_is_named(keras_model, images):
    image = images[0]
    with pytest.raises(InvalidArgumentError, match=r"(?s)batch axis.*img\[None\]"):
        Occlusion(keras_model, patch_size=4, patch_stride=4).explain(image, [0])
    with pytest.raises(InvalidArgumentError, match=r"(?s)batch axis.*img\[None\]"):
        Deletion(keras_model, image, [0])
    # with the batch axis, the same image is explained: the model is linear, so the
    # occlusion of a 4x4 patch (towards 0) drops the score of class 0 by the patch's sum
    # of weight * input, the value each of its pixels gets (patches do not overlap)
    maps = Occlusion(keras_model, patch_size=4, patch_stride=4).explain(image[None], [0])
    kernel = keras_model.layers[-1].get_weights()[0][:, 0].reshape(H, W, C)
    per_pixel = (kernel * image).sum(axis=-1)
    patches = per_pixel.reshape(H // 4, 4, W // 4, 4).sum(axis=(1, 3))
    expected = np.repeat(np.repeat(patches, 4, axis=0), 4, axis=1)[None, :, :, None]
    np.testing.assert_allclose(maps.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_a_missing_batch_axis_in_an_unbatched_dataset_is_not_confused(keras_model, images):
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(N, int)))
    maps = Occlusion(keras_model, patch_size=4, patch_stride=4).explain(ds)
    assert maps.shape == (N, H, W, 1)


# -- tf.data (issue 11, item 11) ------------------------------------------------------------
def test_a_dataset_of_one_tuples_is_inputs_alone(images):
    expected = prepare_inputs_targets(images, None, require_targets=False)
    for ds in (tf.data.Dataset.from_tensor_slices((images,)),
               tf.data.Dataset.from_tensor_slices((images,)).batch(2)):
        prepared = prepare_inputs_targets(ds, None, require_targets=False)
        np.testing.assert_array_equal(prepared.inputs.numpy(), expected.inputs.numpy())
        assert prepared.targets is None


def test_a_dataset_of_dicts_says_how_to_map_it(images):
    ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": np.zeros(N, int)})
    with pytest.raises(InvalidTypeError, match=r"(?s)dict.*ds\.map\(lambda d: \(d\['image'\]"):
        prepare_inputs_targets(ds, None)


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_batches_with_a_static_batch_dim_are_batches(images, batch):
    """.batch(b, drop_remainder=True) gives a static first dim: still a batch of images."""
    ds = tf.data.Dataset.from_tensor_slices((images, np.arange(1, N + 1))).batch(
        batch, drop_remainder=True)
    prepared = prepare_inputs_targets(ds, None)
    kept = (N // batch) * batch
    np.testing.assert_array_equal(prepared.inputs.numpy(), images[:kept])
    np.testing.assert_array_equal(prepared.targets, np.arange(1, kept + 1))
    maps = Occlusion(lambda x: linear(x)[:, 0], patch_size=4, patch_stride=4,
                     operator="regression").explain(
        ds.map(lambda x, y: (x, tf.cast(y, tf.float32))))
    assert maps.shape == (kept, H, W, 1)


def test_unbatched_grayscale_and_batched_grayscale(images):
    gray = images[..., 0]
    unbatched = tf.data.Dataset.from_tensor_slices(gray)            # elements (H, W)
    batched = tf.data.Dataset.from_tensor_slices(gray).batch(2)     # (None, H, W)
    for ds in (unbatched, batched):
        prepared = prepare_inputs_targets(ds, None, require_targets=False)
        np.testing.assert_array_equal(prepared.inputs.numpy(), gray)


def test_an_infinite_dataset_is_refused_at_once(images):
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(N, int))).repeat()
    with pytest.raises(InvalidArgumentError, match=r"(?s)infinite.*\.take\("):
        prepare_inputs_targets(ds, None)


def test_an_unknown_cardinality_dataset_is_read_up_to_a_cap(images, monkeypatch):
    finite = tf.data.Dataset.from_tensor_slices((images, np.arange(N))).filter(
        lambda x, y: True)
    assert finite.cardinality() == tf.data.UNKNOWN_CARDINALITY
    prepared = prepare_inputs_targets(finite, None)
    np.testing.assert_array_equal(prepared.inputs.numpy(), images)
    monkeypatch.setattr(data_module, "MAX_DATASET_INPUTS", 5)
    endless = tf.data.Dataset.from_tensor_slices((images, np.arange(N))).repeat().filter(
        lambda x, y: True)
    with pytest.raises(InvalidArgumentError, match=r"(?s)more than 5 inputs.*\.take\("):
        prepare_inputs_targets(endless, None)


# -- more of the same kind ------------------------------------------------------------------
def test_integer_and_boolean_inputs_are_read_as_floats(images):
    as_uint8 = (images * 255).astype(np.uint8)
    prepared = prepare_inputs_targets(as_uint8, None, require_targets=False)
    np.testing.assert_array_equal(prepared.inputs.numpy(), as_uint8.astype(np.float32))
    as_bool = images > 0.5
    prepared = prepare_inputs_targets(as_bool, None, require_targets=False)
    np.testing.assert_array_equal(prepared.inputs.numpy(), as_bool.astype(np.float32))


def test_complex_inputs_are_refused(images):
    with pytest.raises(InvalidTypeError, match="complex"):
        prepare_inputs_targets(images.astype(np.complex64), None, require_targets=False)


def test_the_callers_arrays_are_left_untouched(images):
    x = images.copy()
    targets = np.eye(2, dtype=np.float32)[[0, 1, 0]]
    kept = targets.copy()
    model = lambda batch: linear(batch)
    Occlusion(model, patch_size=4, patch_stride=4).explain(x, targets)
    Deletion(model, x, targets, steps=3)(np.ones((N, H, W), np.float32))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(targets, kept)


def test_rank3_inputs_are_time_series_and_image_methods_say_to_add_the_channel(images):
    """Rank 3 is a time series (as Xplique): grayscale images need (N, H, W, 1)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((H, W, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    gray = images[..., 0]
    explainer = Occlusion(model, patch_size=4, patch_stride=4)
    with pytest.raises(InvalidArgumentError,
                       match=r"time series \(N, T, C\).*x\[\.\.\., None\]"):
        explainer.explain(gray, [0, 1, 0])
    maps = explainer.explain(gray[..., None], [0, 1, 0])
    assert maps.shape == (N, H, W, 1)


def test_inputs_of_another_rank_than_the_model_declares_are_named(keras_model, images):
    with pytest.raises(InvalidArgumentError,
                       match=r"(?s)\(3, 8, 8\) \(rank 3\).*\(None, 8, 8, 3\)"):
        Occlusion(keras_model, patch_size=4, patch_stride=4).explain(images[..., 0], [0, 1, 0])


# -- generators of images of any size (audit of issue 11, item 11) ------------------------
def _from_generator(elements, *specs):
    def generate():
        yield from elements
    signature = specs[0] if len(specs) == 1 else tuple(specs)
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def test_a_generator_of_images_of_any_size_is_read_one_image_per_element(images):
    labels = np.arange(N)
    any_size = tf.TensorSpec((None, None, C), tf.float32)
    # pairs with a scalar target: one image per element
    pairs = _from_generator(list(zip(images, labels)), any_size, tf.TensorSpec((), tf.int64))
    prepared = prepare_inputs_targets(pairs, None)
    np.testing.assert_array_equal(prepared.inputs.numpy(), images)
    np.testing.assert_array_equal(prepared.targets, labels)
    # inputs alone: H and W dynamic, C static -> one (H, W, C) image per element
    alone = _from_generator(list(images), any_size)
    prepared = prepare_inputs_targets(alone, None, require_targets=False)
    np.testing.assert_array_equal(prepared.inputs.numpy(), images)
    # end to end with a model that takes inputs of any rank
    any_rank = lambda x: tf.reduce_mean(tf.reshape(x, (tf.shape(x)[0], -1)), 1)
    maps = Occlusion(any_rank, patch_size=4, patch_stride=4, operator="regression").explain(
        alone, np.ones(N, np.float32))
    assert maps.shape == (N, H, W, 1)


def test_the_target_spec_decides_whether_elements_are_batches(images):
    gray = images[..., 0]
    labels = np.arange(N)
    # (None, W, C) inputs with scalar targets: one image of unknown height per element
    # (the rule for inputs alone would read a batch of grayscale images)
    pairs = _from_generator(list(zip(images, labels)), tf.TensorSpec((None, W, C)),
                            tf.TensorSpec((), tf.int64))
    prepared = prepare_inputs_targets(pairs, None)
    np.testing.assert_array_equal(prepared.inputs.numpy(), images)
    # fully dynamic rank-3 batches with targets (None,): batches of grayscale images
    batches = [(gray[:2], labels[:2]), (gray[2:], labels[2:])]
    ds = _from_generator(batches, tf.TensorSpec((None, None, None)), tf.TensorSpec((None,),
                                                                                   tf.int64))
    prepared = prepare_inputs_targets(ds, None)
    np.testing.assert_array_equal(prepared.inputs.numpy(), gray)
    np.testing.assert_array_equal(prepared.targets, labels)
    # one-hot rows (None, K): batches too
    rows = np.eye(2, dtype=np.float32)[[0, 1, 0]]
    ds = _from_generator([(gray[:2], rows[:2]), (gray[2:], rows[2:])],
                         tf.TensorSpec((None, None, None)), tf.TensorSpec((None, 2)))
    np.testing.assert_array_equal(prepare_inputs_targets(ds, None).inputs.numpy(), gray)


def test_fully_dynamic_rank_3_inputs_alone_are_ambiguous(images):
    ds = _from_generator(list(images), tf.TensorSpec((None, None, None)))
    with pytest.raises(InvalidArgumentError,
                       match=r"(?s)\(None, None, None\).*TensorSpec\(\(None, None, 3\)"):
        prepare_inputs_targets(ds, None, require_targets=False)


def test_images_of_different_sizes_are_refused_with_how_to_resize(images):
    small = images[:, :6, :6]
    ds = _from_generator([images[0], small[0], images[1]], tf.TensorSpec((None, None, C)))
    with pytest.raises(InvalidArgumentError,
                       match=r"(?s)different shapes.*\(8, 8, 3\).*\(6, 6, 3\).*resize"):
        prepare_inputs_targets(ds, None, require_targets=False)
    # batches of different sizes too
    ds = _from_generator([images[:2], small[:1]], tf.TensorSpec((None, None, None, C)))
    with pytest.raises(InvalidArgumentError, match=r"(?s)different shapes.*resize"):
        prepare_inputs_targets(ds, None, require_targets=False)


def test_an_endless_generator_is_refused_quickly(images, monkeypatch):
    assert data_module.MAX_DATASET_INPUTS <= 2 ** 16
    assert data_module.MAX_DATASET_BYTES <= 2 * 2 ** 30
    monkeypatch.setattr(data_module, "MAX_DATASET_INPUTS", 50)
    yielded = []

    def endless():
        while True:
            yielded.append(1)
            yield images[0]

    ds = tf.data.Dataset.from_generator(endless, output_signature=tf.TensorSpec((H, W, C)))
    assert ds.cardinality() == tf.data.UNKNOWN_CARDINALITY
    with pytest.raises(InvalidArgumentError, match=r"(?s)more than 50 inputs.*\.take\("):
        prepare_inputs_targets(ds, None, require_targets=False)
    assert len(yielded) < 1000


# -- one image without its batch axis, the model's declared sizes (audit, items 6) ---------
def test_one_rgb_image_for_a_plain_function_is_read_as_time_series_without_warning(images):
    """(16, 16, 3) is 16 time series of 16 steps and 3 channels by the rank rule: no
    warning (time series often have 1 or 3 channels); maps come back as time series, and
    image-only methods refuse it with the fix."""
    import warnings
    model = lambda x: tf.reduce_mean(tf.reshape(x, (tf.shape(x)[0], -1)), 1)
    image = np.random.default_rng(0).uniform(size=(16, 16, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_inputs_targets(image, None, require_targets=False)
    maps = Occlusion(model, patch_size=2, patch_stride=2, operator="regression").explain(
        image, np.ones(16, np.float32))
    assert maps.shape == (16, 16, 3)
    from sobol_tf.attributions import ExtremalPerturbation
    with pytest.raises(InvalidArgumentError, match=r"\(None, 16, 3\).*x\[\.\.\., None\]"):
        ExtremalPerturbation(model, operator="regression").explain(image, np.ones(16))


def test_one_grayscale_image_without_channel_says_to_add_the_batch_axis(images):
    model = keras.Sequential([keras.Input((H, W, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    gray = images[0, ..., :1]                                    # (8, 8, 1)
    for make in (lambda: Occlusion(model, patch_size=4, patch_stride=4).explain(gray, [0]),
                 lambda: Deletion(model, gray, [0])):
        with pytest.raises(InvalidArgumentError,
                           match=r"(?s)\(8, 8, 1\).*ONE input.*batch axis.*img\[None\]"):
            make()
    maps = Occlusion(model, patch_size=4, patch_stride=4).explain(gray[None], [0])
    assert maps.shape == (1, H, W, 1)


def test_inputs_of_another_size_than_the_model_declares_warn_up_front(keras_model, images):
    from sobol_tf.errors import SobolTFWarning

    small = images[:2, :4, :4]                                   # (2, 4, 4, 3)
    pattern = r"(?s)\(2, 4, 4, 3\).*\(None, 8, 8, 3\)"
    # the warning comes before the forward pass; this Flatten-Dense model then fails
    with pytest.warns(SobolTFWarning, match=pattern), pytest.raises(ModelCallError):
        Occlusion(keras_model, patch_size=2, patch_stride=2).explain(small, [0, 1])
    with pytest.warns(SobolTFWarning, match=pattern), pytest.raises(ModelCallError):
        Deletion(keras_model, small, [0, 1])
    with pytest.warns(SobolTFWarning, match=pattern), pytest.raises(ModelCallError):
        Occlusion(keras_model, patch_size=2, patch_stride=2).explain(
            tf.data.Dataset.from_tensor_slices((small, [0, 1])))
    # a fully convolutional model declared at 8x8 runs on 4x4, as in Keras, with the warning
    convolutional = keras.Sequential([keras.Input((H, W, C)), keras.layers.Conv2D(2, 1),
                                      keras.layers.GlobalAveragePooling2D()])
    with pytest.warns(SobolTFWarning, match=pattern):
        maps = Occlusion(convolutional, patch_size=2, patch_stride=2).explain(small, [0, 1])
    assert maps.shape == (2, 4, 4, 1)
    # another number of channels is refused
    with pytest.raises(InvalidArgumentError, match=r"(?s)\(2, 8, 8, 1\).*\(None, 8, 8, 3\)"):
        prepare_inputs_targets(images[:2, ..., :1], None, declared_shape=(None, H, W, C),
                               require_targets=False)
    # (N, H, W) for (None, H, W, 1) is a time series: refused with the fix
    with pytest.raises(InvalidArgumentError, match=r"time series.*x\[\.\.\., None\]"):
        prepare_inputs_targets(images[..., 0], None, declared_shape=(None, H, W, 1),
                               require_targets=False)
    # dynamic sizes accept any size
    prepare_inputs_targets(small, None, declared_shape=(None, None, None, C),
                           require_targets=False)
