"""The batching loop shared by explainers and metrics (sobol_tf._utils.batching)."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf._utils import batching
from sobol_tf._utils.batching import CompiledStep, run_batches
from sobol_tf.errors import InvalidTypeError, ModelCallError, SobolTFWarning

SIGNATURE = [tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, 2], tf.float32)]


def doubled_rows(indices, table):
    """Row ``i`` of the result is 2 * table[i]: order and completeness are visible."""
    return 2.0 * tf.gather(table, indices)


def run(loop, nb_items, table, batch_size, verbose=False):
    return run_batches(loop, nb_items, (table,), batch_size=batch_size, verbose=verbose,
                       title="Test", what="rows").numpy()


@pytest.mark.parametrize("nb_items, batch_size", [(1, 4), (10, 3), (12, 4), (7, 100)])
@pytest.mark.parametrize("loop_min_batches, chunk_seconds", [
    (1000, 0.5),  # a short job: the step is called once per batch
    (1, 0.0),     # the compiled loop, chunks of one batch
    (1, 1e9),     # the compiled loop, chunks doubling
])
def test_every_item_once_in_order(monkeypatch, nb_items, batch_size, loop_min_batches,
                                  chunk_seconds):
    monkeypatch.setattr(batching, "LOOP_MIN_BATCHES", loop_min_batches)
    monkeypatch.setattr(batching, "CHUNK_SECONDS", chunk_seconds)
    table = tf.constant(np.arange(2 * nb_items, dtype=np.float32).reshape(nb_items, 2))
    result = run(CompiledStep(doubled_rows, SIGNATURE), nb_items, table, batch_size)
    np.testing.assert_array_equal(result, 2 * table.numpy())


@pytest.mark.parametrize("loop_min_batches", [1, 1000])
def test_the_step_sees_batches_of_batch_size(monkeypatch, loop_min_batches):
    monkeypatch.setattr(batching, "LOOP_MIN_BATCHES", loop_min_batches)

    def sizes(indices, table):
        return tf.fill(tf.shape(indices), tf.shape(indices)[0])  # int32: cast to float32

    table = tf.zeros((10, 2))
    result = run(CompiledStep(sizes, SIGNATURE), 10, table, batch_size=4)
    np.testing.assert_array_equal(result, [4] * 8 + [2] * 2)


def test_chunks_grow_when_calls_are_quick(monkeypatch):
    calls = []
    compiled = CompiledStep(doubled_rows, SIGNATURE)
    loop = compiled.loop

    def counting(start, stop, batch_size, *arguments):
        calls.append((start, stop))
        return loop(start, stop, batch_size, *arguments)

    compiled._loop = counting
    monkeypatch.setattr(batching, "CHUNK_SECONDS", 1e9)
    monkeypatch.setattr(batching, "LOOP_MIN_BATCHES", 16)
    table = tf.zeros((40, 2))
    run(compiled, 40, table, batch_size=2)
    assert calls == [(0, 2), (2, 6), (6, 14), (14, 30), (30, 40)]


def test_progress_bar_counts_batches(capsys):
    table = tf.zeros((9, 2))
    run(CompiledStep(doubled_rows, SIGNATURE), 9, table, batch_size=2, verbose=True)
    out = capsys.readouterr().out
    assert "Test: rows" in out
    assert "5/5" in out


@pytest.mark.parametrize("loop_min_batches", [1, 1000])
def test_runtime_error_names_what_and_items(monkeypatch, loop_min_batches):
    monkeypatch.setattr(batching, "LOOP_MIN_BATCHES", loop_min_batches)

    def failing(indices, table):
        tf.debugging.assert_less(indices, tf.constant(5, tf.int64), message="boom")
        return tf.gather(table, indices)

    table = tf.zeros((8, 2))
    with pytest.raises(ModelCallError, match=r"(?s)evaluating rows \(items 4 to 7 of 8, "
                                             r"batch_size=4\).*boom"):
        run(CompiledStep(failing, SIGNATURE), 8, table, batch_size=4)


@pytest.mark.parametrize("loop_min_batches", [1, 1000])
def test_library_errors_pass_through(monkeypatch, loop_min_batches):
    monkeypatch.setattr(batching, "LOOP_MIN_BATCHES", loop_min_batches)

    def several_outputs(indices, table):
        raise InvalidTypeError("the model returned several outputs")

    with pytest.raises(InvalidTypeError, match="several outputs"):
        run(CompiledStep(several_outputs, SIGNATURE), 4, tf.zeros((4, 2)), batch_size=2)


def numpy_rows(indices, table):
    """A step TensorFlow cannot trace (numpy on a symbolic tensor): runs eagerly."""
    return 2.0 * np.asarray(tf.gather(table, indices))


@pytest.mark.parametrize("loop_min_batches", [1, 1000])
def test_untraceable_steps_run_eagerly_with_one_warning_per_mode(monkeypatch, loop_min_batches):
    monkeypatch.setattr(batching, "LOOP_MIN_BATCHES", loop_min_batches)
    table = tf.constant(np.arange(14, dtype=np.float32).reshape(7, 2))
    mode = batching.ModelMode()
    with pytest.warns(SobolTFWarning, match=r"(?s)could not be traced.*eagerly") as caught:
        first = run(CompiledStep(numpy_rows, SIGNATURE, mode=mode), 7, table, batch_size=3)
        second = run(CompiledStep(numpy_rows, SIGNATURE, mode=mode), 7, table, batch_size=2)
    assert len([w for w in caught if issubclass(w.category, SobolTFWarning)]) == 1
    np.testing.assert_array_equal(first, 2 * table.numpy())
    np.testing.assert_array_equal(second, 2 * table.numpy())
    assert mode.eager


def test_steps_that_need_tracing_refuse_to_run_eagerly():
    step = CompiledStep(numpy_rows, SIGNATURE, eager_fallback=False)
    with pytest.raises(ModelCallError, match="could not be traced"):
        run(step, 4, tf.zeros((4, 2)), batch_size=2)


def test_non_finite_results_are_counted_and_placed():
    def some_infinite(indices, table):
        return tf.gather(table, indices) / tf.gather(table, indices)[:, :1]

    table = tf.constant([[1.0, 2.0], [0.0, 1.0], [3.0, 3.0], [0.0, -1.0]])
    with pytest.raises(ModelCallError, match=r"non-finite rows: 4 of 8 \(2 NaN, 1 \+inf, "
                                             r"1 -inf\), from inputs 0, 1, while evaluating "
                                             r"rows\."):
        run_batches(CompiledStep(some_infinite, SIGNATURE), 4, (table,), batch_size=3,
                    verbose=False, title="Test", what="rows", values="rows",
                    items_per_input=2)


def test_a_step_returning_another_number_of_rows_is_refused():
    def first_row_only(indices, table):
        return tf.gather(table, indices)[:1]

    with pytest.raises(ModelCallError, match="another number of inputs|1 rows"):
        run(CompiledStep(first_row_only, SIGNATURE), 4, tf.zeros((4, 2)), batch_size=2)


def test_eager_first_skips_the_trace_of_a_one_shot_job():
    """A first job of one batch runs eagerly (no trace); the step is traced when reused,
    and a job of several batches is traced at once."""
    table = tf.constant(np.arange(8, dtype=np.float32).reshape(4, 2))
    traces = []

    def counted(indices, table):
        traces.append(tf.executing_eagerly())
        return doubled_rows(indices, table)

    step = CompiledStep(counted, SIGNATURE, eager_first=True)
    np.testing.assert_array_equal(run(step, 4, table, batch_size=4), 2 * table.numpy())
    assert traces == [True]  # one eager call, nothing traced
    np.testing.assert_array_equal(run(step, 4, table, batch_size=4), 2 * table.numpy())
    assert traces == [True, False]  # traced on reuse, then called as a graph
    several = CompiledStep(counted, SIGNATURE, eager_first=True)
    np.testing.assert_array_equal(run(several, 4, table, batch_size=2), 2 * table.numpy())
    assert traces[2:] == [False]
