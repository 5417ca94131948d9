"""Reading a folder of images as a `Source`: one sub-folder per class, one image at a time.

Layouts: `root/<class>/*.png|jpg|jpeg`, split with a seed, or
`root/train/<class>/...` and `root/test/<class>/...`. Every image is
resized to one size (`image_size`, else the first image's) and kept
grayscale (1 channel) or RGB (3 channels) as the first image is; an alpha
channel is dropped. The folder listing alone gives the classes and sizes;
each image is decoded only when its chunk is streamed, so memory holds one
chunk.
"""

import os
import sys
import warnings

import numpy as np

from kerasreg import _checks
from kerasreg.data.source import Source, check_class_names, chunk_rows, test_mask

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def open_images(path, *, image_size=None, test_split=0.2, seed=0):
    """Open a folder of class sub-folders of images as a `Source`.

    Example:

    >>> open_images("flowers/", image_size=(32, 32)).input_shape  # doctest: +SKIP
    (32, 32, 3)
    """
    root = os.path.abspath(path)
    splits = _split_folders(root)
    files = {split: _class_files(folder) for split, folder in splits.items()}
    class_names = tuple(sorted({name for per_class in files.values() for name in per_class}))
    if not class_names:
        raise ValueError(f"{path} has no class folders (expected {path}/<class>/*.png or *.jpg).")
    check_class_names(class_names, f"{path}'s class folders")
    index = {name: i for i, name in enumerate(class_names)}
    listed = {split: [(os.path.join(folder, name, file), index[name])
                      for name, names in per_class.items() for file in names]
              for (split, per_class), folder in zip(files.items(), splits.values())}
    first = next(iter(listed.values()))[0][0]
    height, width, channels = _first_shape(first, image_size)

    own_test = set(listed) == {"train", "test"}
    if own_test:
        items = [(file, label, split == "test") for split in ("train", "test") for file, label in listed[split]]
    else:
        (everything,) = listed.values()
        mask = test_mask(len(everything), test_split, seed, path)
        items = [(file, label, bool(test)) for (file, label), test in zip(everything, mask)]

    def chunks():
        rows = chunk_rows(height * width * channels)
        for start in range(0, len(items), rows):
            batch = items[start:start + rows]
            x = np.empty((len(batch), height, width, channels), np.uint8)
            for i, (file, _, _) in enumerate(batch):
                x[i] = _read(file, (height, width), channels, first)
            yield x, np.array([label for _, label, _ in batch], np.int64), np.array([test for *_, test in batch])

    num_test = sum(test for *_, test in items)
    sizes = {"train": len(items) - num_test, "test": num_test}
    return Source(kind="images", path=root, input_key="image", input_shape=(height, width, channels),
                  input_dtype=np.dtype(np.uint8), sizes=sizes, chunks=chunks, class_names=lambda: class_names,
                  own_test=own_test)


def _split_folders(root):
    names = {entry.name for entry in os.scandir(root) if entry.is_dir()}
    if {"train", "test"} <= names:
        return {"train": os.path.join(root, "train"), "test": os.path.join(root, "test")}
    return {"all": root}


def _skip_hidden(entries, folder):
    """`entries` without hidden ones (`.ipynb_checkpoints`, `.DS_Store`), which are said on stderr, not imported."""
    entries = sorted(entries, key=lambda e: e.name)
    hidden = [e.name for e in entries if e.name.startswith(".")]
    if hidden:
        print(f"kerasreg: skipped hidden {', '.join(hidden)} in {folder}", file=sys.stderr, flush=True)
    return [e for e in entries if not e.name.startswith(".")]


def _class_files(folder):
    per_class = {}
    for entry in _skip_hidden(os.scandir(folder), folder):
        if not entry.is_dir():
            continue
        names = sorted(f.name for f in _skip_hidden(os.scandir(entry.path), entry.path)
                       if f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise ValueError(
                f"Class folder {entry.path} is empty: it has no {'/'.join(IMAGE_EXTENSIONS)} images. "
                "Remove it or add its images."
            )
        per_class[entry.name] = names
    return per_class


def _first_shape(file, image_size):
    if image_size is not None:
        if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
                or not all(_checks.is_int(d) and d > 0 for d in image_size)):
            raise _checks.invalid("image_size", "two positive ints (height, width)", image_size)
    image = _open(file)
    channels = 1 if image.mode in _GRAY_MODES else 3
    height, width = image_size if image_size is not None else (image.height, image.width)
    return int(height), int(width), channels


def _open(file):
    from PIL import Image  # Only image imports need Pillow.

    try:
        with open(file, "rb") as f, warnings.catch_warnings():
            # Pillow only warns between its pixel limit and twice it, then decodes all of it anyway.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(f)
            image.load()  # decodes now, so a truncated file fails here, named
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        width, height = _header_size(file)
        raise ValueError(
            f"Image {file} is {width}x{height} pixels ({width * height} pixels), over Pillow's decompression-bomb "
            f"limit of {Image.MAX_IMAGE_PIXELS} pixels; shrink it or remove it (or raise "
            "`PIL.Image.MAX_IMAGE_PIXELS` if you trust it)."
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"Cannot read image {file}: {error}. Remove or replace it.") from None
    return image


def _header_size(file):
    """`(width, height)` from the header of an image that `Image.open` refused as too large.

    Read by the format whose signature the file starts with; formats without a signature are left out (telling
    them apart takes trying each, as `Image.open` does).
    """
    from PIL import Image

    with open(file, "rb") as f:
        prefix = f.read(16)
        for format_id in Image.ID:
            factory, accept = Image.OPEN[format_id]
            if accept is not None and accept(prefix) is True:
                f.seek(0)
                return factory(f, file).size
    raise ValueError(f"Cannot read image {file}: no format of Pillow's reads its header.")


def _read(file, size, channels, first):
    from PIL import Image

    image = _open(file)
    # A color image in a grayscale folder would lose its colors silently; a gray RGB file loses nothing.
    if channels == 1 and image.mode not in _GRAY_MODES:
        if _has_color(image):
            raise ValueError(
                f"Image {file} is in color ({image.mode}) but the first image, {first}, is grayscale; "
                "convert the folder to one kind (all grayscale or all RGB)."
            )
    if image.mode.startswith("I"):
        # A 16-bit grayscale PNG (0..65535): Pillow's `convert("L")` clips it at 255 rather than scaling it.
        image = Image.fromarray(np.round(np.asarray(image, np.float64) * (255 / 65535)).astype(np.uint8))
    mode = "L" if channels == 1 else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    if (image.height, image.width) != size:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image, np.uint8)
    return array[..., np.newaxis] if channels == 1 else array


def _has_color(image):
    rgb = np.asarray(image.convert("RGB"), np.int16)
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())
