"""Make sure Keras runs on TensorFlow before anything imports it.

kerasreg exports TensorFlow SavedModels and uses tf.data throughout, so
another Keras backend cannot work; failing at import is clearer than a
confusing error deep inside training.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow logs CUDA probing failures as errors on CPU-only machines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(
        "kerasreg needs the TensorFlow backend of Keras. "
        f"Received: KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}. "
        "Unset it or set KERAS_BACKEND=tensorflow."
    )
