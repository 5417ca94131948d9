"""The compiled inference pass shared by the gap callback, `train`'s final metrics and compare.

`Evaluator` computes loss (the compiled loss plus regularisation losses, as
`model.evaluate` does) and argmax accuracy of a model in inference mode, in
one compiled function traced once per model, over fixed chunks of rows.
`compile_inference` compiles such a pass with the backend's own compiler:
`jax.jit` of `model.stateless_call` on JAX, `tf.function` on TensorFlow.
"""

import keras
import numpy as np
import tensorflow as tf

from kerasreg import _checks


def to_tensor(array):
    """`array` as a tensor, floats cast to Keras's floatx as `fit` casts them.

    Example:

    >>> to_tensor([1.0, 2.0]).dtype.name
    'float32'
    """
    # Cast floats to floatx as `fit` does, so inference here sees the same
    # inputs as `evaluate` would.
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(keras.backend.floatx())
    return keras.ops.convert_to_tensor(array)


def compile_inference(model, body, *, training=False):
    """`body(call, *args)` compiled once, where `call(x)` runs `model` in inference mode.

    `call(x)` returns `(outputs, losses)`: the model's outputs with
    `training=False` and its regularisation losses (`model.losses`). Write
    `body` with `keras.ops`; it is traced by `jax.jit` on the JAX backend
    (the model's current variables are passed in at every call, so a
    trained model is never evaluated with stale weights) and by
    `tf.function` on TensorFlow. Layers read inside `call` (e.g. a
    BatchNormalization's `moving_variance`) see the current values too.

    Training vs inference: `call` runs the model with `training=False`:
    Dropout off, BatchNormalization on its moving statistics, and nothing is
    updated. With `training=True` it runs as `fit` does (Dropout on,
    BatchNormalization on batch statistics) without computing gradients; on
    JAX the non-trainable state (moving statistics, dropout seeds) is carried
    from call to call inside the returned function and the model's variables
    are left as they are, while on TensorFlow the model's own variables are
    updated: pass a copy.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> mean = compile_inference(model, lambda call, x: keras.ops.mean(call(x)[0]))
    >>> float(mean(to_tensor([[1.0, 2.0, 3.0]]))) == float(keras.ops.mean(model(to_tensor([[1.0, 2.0, 3.0]]))))
    True
    """
    if keras.backend.backend() == "jax":
        import jax

        def pure(trainable, non_trainable, *args):
            state = []

            def call(x):
                outputs, updated, losses = model.stateless_call(
                    trainable, non_trainable, x, training=training, return_losses=True)
                state.append(updated)
                return outputs, losses

            return body(call, *args), (state[-1] if training and state else None)

        jitted = jax.jit(pure)
        carried = []

        def run(*args):
            non_trainable = carried[-1] if carried else [v.value for v in model.non_trainable_variables]
            result, updated = jitted([v.value for v in model.trainable_variables], non_trainable, *args)
            if updated is not None:
                carried[:] = [updated]
            return result

        return run

    @tf.function
    def traced(*args):
        def call(x):
            outputs = model(x, training=training)
            return outputs, model.losses

        return body(call, *args)

    return traced


# Bytes of inputs per chunk for inference over large rows: a conv net's activations are many times its input,
# and in chunks this small they are not slowed by memory traffic (MobileNetV2 at 96x96x3 re-estimates its BN
# statistics 1.6x faster in chunks of 32 rows than of 1,000).
CHUNK_BYTES = 4 * 2**20


def rows_per_chunk(x, most):
    """Rows of `x` to run through a model at once in inference: `most`, or fewer for large rows.

    Chunks hold about `CHUNK_BYTES` (4 MiB) of inputs, and at least one row;
    inference results do not depend on the chunk size.

    Example:

    >>> import numpy as np
    >>> rows_per_chunk(np.zeros((10, 40), "float32"), 1000), rows_per_chunk(np.zeros((10, 96, 96, 3), "float32"), 1000)
    (1000, 37)
    """
    row_bytes = max(1, np.asarray(x[:1]).nbytes)
    return max(1, min(most, CHUNK_BYTES // row_bytes))


def num_rows(data, argument):
    """Number of examples in `(x, y)` arrays, an array, or a finite `tf.data.Dataset`.

    Example:

    >>> import numpy as np
    >>> num_rows((np.zeros((5, 2)), np.zeros(5)), "data")
    5
    """
    if isinstance(data, tf.data.Dataset):
        n = int(data.cardinality())
        if n == tf.data.INFINITE_CARDINALITY:
            raise _checks.invalid(argument, "a finite dataset", received="an infinite dataset (remove `.repeat()`).")
        if n == tf.data.UNKNOWN_CARDINALITY:
            n = int(data.reduce(np.int64(0), lambda count, _: count + 1))
        return n
    if isinstance(data, (tuple, list)):
        data = data[0]
    leaves = keras.tree.flatten(data)
    if not leaves or not hasattr(leaves[0], "shape"):
        raise _checks.invalid(argument, "a tuple `(x, y)` of arrays or a `tf.data.Dataset` of `(x, y)` pairs",
                              received=f"{argument}={type(data).__name__}")
    return int(leaves[0].shape[0])


def materialise_subset(train_data, indices):
    """Rows `indices` (sorted) of `train_data` as numpy `(x, y)`.

    Example:

    >>> import numpy as np
    >>> materialise_subset((np.arange(4), np.arange(4)), [1, 3])[1]
    array([1, 3])
    """
    if isinstance(train_data, tf.data.Dataset):
        n = num_rows(train_data, "train_data")
        keep = np.zeros(n, dtype=bool)
        keep[indices] = True
        keep = tf.constant(keep)
        # One pass over the data, keeping the drawn rows: the full training
        # set never has to fit in memory.
        subset = (
            train_data.enumerate()
            .filter(lambda i, element: tf.gather(keep, i))
            .map(lambda i, element: (element[0], element[1]))
            .batch(len(indices))
            .get_single_element()
        )
        return keras.tree.map_structure(lambda t: t.numpy(), subset)
    if not isinstance(train_data, (tuple, list)) or len(train_data) < 2:
        raise _checks.invalid("train_data", "a tuple `(x, y)` of arrays or an unbatched `tf.data.Dataset` of "
                              "`(x, y)` pairs", received=f"train_data={type(train_data).__name__}")
    x, y = train_data[0], train_data[1]
    x = keras.tree.map_structure(lambda a: np.asarray(a)[indices], x)
    return x, np.asarray(y)[indices]


def _single_loss(model):
    """The per-example loss function of a model compiled with one loss."""
    loss = model.loss
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    if isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if loss is None or isinstance(loss, (list, tuple, dict)):
        raise ValueError(
            "Evaluating the overfitting gap needs a model compiled with a single loss, "
            "e.g. `model.compile(loss='sparse_categorical_crossentropy', "
            f"metrics=['accuracy'])`. Received: loss={model.loss!r}"
        )
    loss_fn = keras.losses.get(loss) if isinstance(loss, str) else loss
    if isinstance(loss_fn, keras.losses.Loss):
        # `Loss.call` gives per-example values, so chunks can be summed
        # and divided once, whatever the object's reduction.
        loss_fn = loss_fn.call
    return loss_fn


class Evaluator:
    """Loss and accuracy of a compiled model in inference mode, in one compiled pass.

    Training vs inference: the model runs with `training=False` (Dropout
    off, BatchNormalization on its moving statistics), so these are the
    numbers of the model as it would be served. The loss is the model's
    compiled loss plus its regularisation losses, as `model.evaluate`
    computes it; accuracy is the argmax match.

    Every chunk has the same number of rows (a short last chunk is padded
    and its padding masked out), so the function is traced and compiled
    once per model, whatever the arrays it is given later. The chunk size is
    `batch_size`, or fewer rows when the first arrays evaluated are smaller.

    With `training=True` the same numbers are computed in training mode
    (Dropout on, BatchNormalization on batch statistics), as `fit` collects
    its running `loss` and `accuracy`, without any weight update; see
    `compile_inference` for what that changes in the model.

    Args:
        model: keras.Model. Compiled with a single loss.
        batch_size: int. Most rows per forward pass. Defaults to `1024`.
        training: bool. Run the model in training mode. Defaults to `False`.

    Example:

    >>> import numpy as np, keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", "sparse_categorical_crossentropy")
    >>> evaluator = Evaluator(model)
    >>> loss, accuracy = evaluator.evaluate(np.zeros((8, 4), "float32"), np.zeros(8, "int32"))
    >>> 0 <= accuracy <= 1
    True
    """

    def __init__(self, model, batch_size=1024, *, training=False):
        self.model = model
        self.batch_size = batch_size
        self.training = training
        self.chunk_size = None
        self._fn = None

    def chunks(self, x, y):
        """`(x, y, mask)` tensor chunks, to pass to `evaluate_chunks` repeatedly."""
        rows = len(y)
        if self.chunk_size is None:
            self.chunk_size = max(1, min(self.batch_size, rows))
        size = self.chunk_size

        def cut(array, start):
            part = np.asarray(array[start : start + size])
            if len(part) < size:
                part = np.concatenate([part, np.zeros((size - len(part), *part.shape[1:]), part.dtype)])
            return to_tensor(part)

        return [
            (
                keras.tree.map_structure(lambda a: cut(a, start), x),
                cut(y, start),
                to_tensor(np.arange(start, start + size) < rows),
            )
            for start in range(0, rows, size)
        ]

    def _build(self):
        loss_fn = _single_loss(self.model)
        ops = keras.ops

        def evaluate(call, x_chunk, y_chunk, mask):
            y_pred, losses = call(x_chunk)
            y_pred = ops.cast(y_pred, "float32")
            # `where`, not a product: a padded row's loss may be inf or NaN.
            loss_sum = ops.sum(ops.where(mask, ops.cast(loss_fn(y_chunk, y_pred), "float32"), 0.0))
            if len(y_chunk.shape) >= 2 and y_chunk.shape[-1] > 1:  # one-hot labels
                labels = ops.argmax(y_chunk, axis=-1)
            else:
                labels = ops.reshape(ops.cast(y_chunk, "int32"), [-1])
            predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
            correct = ops.sum(ops.cast(ops.logical_and(mask, ops.equal(predicted, ops.cast(labels, "int32"))),
                                       "float32"))
            # `evaluate` adds the regularisation losses (`model.losses`) to
            # val_loss; leaving them out here would bias the loss gap.
            extra = sum(ops.cast(v, "float32") for v in losses) if losses else ops.zeros(())
            rows = ops.sum(ops.cast(mask, "float32"))
            return ops.stack([loss_sum, correct, extra * rows, rows])

        self._fn = compile_inference(self.model, evaluate, training=self.training)

    def evaluate_chunks(self, chunks):
        """`(loss, accuracy)` over chunks made by `chunks(x, y)`."""
        if self._fn is None:
            self._build()
        totals = sum(np.asarray(self._fn(*chunk), np.float64) for chunk in chunks)
        return float((totals[0] + totals[2]) / totals[3]), float(totals[1] / totals[3])

    def evaluate(self, x, y):
        """`(loss, accuracy)` on arrays `x`, `y`, in inference mode.

        Example:

        >>> Evaluator(model).evaluate(x_test, y_test)  # doctest: +SKIP
        (0.97, 0.66)
        """
        return self.evaluate_chunks(self.chunks(x, y))


def training_evaluators(model):
    """Batch size -> the one training-mode `Evaluator` on `model` at that batch size, compiled on first use.

    Every measure that runs `model` in training mode at a batch size shares
    that pass's compiled function.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> at = training_evaluators(model)
    >>> at(32) is at(32), at(32).training
    (True, True)
    """
    evaluators = {}

    def at(batch_size):
        if batch_size not in evaluators:
            evaluators[batch_size] = Evaluator(model, batch_size, training=True)
        return evaluators[batch_size]

    return at
