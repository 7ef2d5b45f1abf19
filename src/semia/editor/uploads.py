"""Uploaded files in, PNG bytes out: every upload is decoded by semia.io's readers with limits.

An upload is written to a private temporary folder under a fixed name (only the suffix of the
browser's file name is kept, and only a known one), read with the same readers and size limit
as the command line, and deleted; error messages, and the warnings logged while it is read,
name the upload, never the temporary path.
"""

from __future__ import annotations

import base64
import io
import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from semia.errors import check_min_size
from semia.io import InputError, LabelMap, load_scene, read_image, read_target, to_uint8

_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".npy")
_NPY_MAGIC = b"\x93NUMPY"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the form field it came in, the browser's file name, the bytes."""

    field: str
    filename: str
    data: bytes

    def describe(self) -> str:
        name = Path(self.filename or "").name[:80] or "unnamed"
        return f"{self.field} upload {name!r}"

    def suffix(self) -> str:
        """A known suffix for the temporary file: the file name's, else sniffed."""
        suffix = Path(self.filename or "").suffix.lower()
        if suffix in _SUFFIXES:
            return suffix
        return ".npy" if self.data.startswith(_NPY_MAGIC) else ".png"


class _UploadNames(logging.Filter):
    """A filter on semia's loggers that rewrites the temporary paths of the uploads being read
    into the uploads' names in every record, so that warnings name them as errors do.

    Each path is unique to its request, so one filter serves concurrent requests.
    """

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, path: str, name: str) -> None:
        with self._lock:
            self._names[path] = name
        for logger_name in list(logging.root.manager.loggerDict):
            if logger_name.startswith("semia."):  # a filter only sees its own logger's records
                logging.getLogger(logger_name).addFilter(self)  # once: addFilter skips repeats

    def remove(self, paths: list[str]) -> None:
        with self._lock:
            for path in paths:
                self._names.pop(path, None)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            names = list(self._names.items())
        if names:
            message = rewritten = record.getMessage()
            for path, name in names:
                rewritten = rewritten.replace(path, name)
            if rewritten != message:
                record.msg, record.args = rewritten, ()
        return True


_UPLOAD_NAMES = _UploadNames()


class _Spooled:
    """Uploads written to a private temporary folder; InputError messages and the records
    logged while they are read name the uploads."""

    def __init__(self, uploads: list[Upload], max_pixels: int) -> None:
        self.uploads, self.max_pixels = uploads, max_pixels

    def __enter__(self) -> list[str]:
        self._dir = tempfile.TemporaryDirectory(prefix="semia-edit-")
        self.paths = []
        try:
            for upload in self.uploads:
                if not upload.data:
                    raise InputError(f"{upload.describe()}: the file is empty")
                path = str(Path(self._dir.name) / f"{upload.field}{upload.suffix()}")
                Path(path).write_bytes(upload.data)
                self.paths.append(path)
                _UPLOAD_NAMES.add(path, upload.describe())
                _check_pixels(path, upload, self.max_pixels)
        except BaseException:
            self._cleanup()
            raise
        return self.paths

    def _cleanup(self) -> None:
        _UPLOAD_NAMES.remove(self.paths)
        self._dir.cleanup()

    def __exit__(self, kind, error, tb) -> None:
        self._cleanup()
        if isinstance(error, InputError):
            message = str(error)
            for upload, path in zip(self.uploads, self.paths, strict=False):
                message = message.replace(path, upload.describe())
            raise InputError(message) from None


def _check_pixels(path: str, upload: Upload, max_pixels: int) -> None:
    """Refuse images larger than max_pixels before they are decoded (header only)."""
    try:
        if path.endswith(".npy"):
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
            height, width = (shape[0], shape[1]) if len(shape) >= 2 else (1, 0)
        else:
            with Image.open(path) as im:
                width, height = im.size
    except Exception:  # undecodable: semia.io's reader gives the precise message
        return
    if width * height > max_pixels:
        raise InputError(
            f"{upload.describe()}: {width}x{height} px is more than this editor accepts "
            f"({max_pixels} px); downscale it first"
        )


def read_scene(
    photo: Upload, label: Upload, max_size: int, max_pixels: int
) -> tuple[np.ndarray, LabelMap]:
    """Decode an uploaded photo and its label map (same size), downscaled to max_size.

    Returns:
        image (H, W, 3) float32 in [0, 1] and its `LabelMap`.

    Raises:
        InputError: unreadable, too large, too small (a side under 8 px, as the command line
            refuses), mismatched, or not a label map.
    """
    with _Spooled([photo, label], max_pixels) as (photo_path, label_path):
        image, labels = load_scene(photo_path, label_path, max_size)
    check_min_size(image, photo.describe())
    if labels.num_classes > 256:
        raise InputError(f"{label.describe()}: more than 256 labels; the editor handles 256")
    return image, labels


def read_photo(photo: Upload, max_size: int, max_pixels: int) -> np.ndarray:
    """Decode an uploaded photo, downscaled to max_size: (H, W, 3) float32 in [0, 1]; a side
    under 8 px is refused, as the command line refuses it."""
    with _Spooled([photo], max_pixels) as (path,):
        image = read_image(path, max_size)
    check_min_size(image, photo.describe())
    return image


def read_target_upload(
    target: Upload, labels: LabelMap, max_size: int, max_pixels: int
) -> LabelMap:
    """Decode an uploaded target map against the source's labels; colours off the source's
    palette are snapped to the nearest source colour (a browser's anti-aliasing included)."""
    with _Spooled([target], max_pixels) as (path,):
        return read_target(path, labels, unknown="nearest", max_size=max_size)


def ids_from_bytes(data: bytes, labels: LabelMap) -> np.ndarray:
    """A target sent as raw ids: H * W bytes, row-major uint8, each a class id of `labels`.

    Returns:
        (H, W) int64 ids.
    """
    height, width = labels.size
    if len(data) != height * width:
        raise InputError(
            f"target: expected {height}x{width} = {height * width} bytes of class ids (uint8, "
            f"row-major), got {len(data)} bytes"
        )
    ids = np.frombuffer(data, dtype=np.uint8).reshape(height, width).astype(np.int64)
    if int(ids.max()) >= labels.num_classes:
        raise InputError(
            f"target: holds class id {int(ids.max())}, but the label map has only "
            f"{labels.num_classes} classes (ids 0..{labels.num_classes - 1})"
        )
    return ids


def mask_from_bytes(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """A removal mask sent as raw bytes: H * W bytes, row-major, nonzero = remove.

    Returns:
        (H, W) bool, not yet grown.
    """
    return _plane(data, size, "mask", "nonzero = remove") > 0


def lines_from_bytes(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """A sketch sent as raw bytes: H * W bytes, row-major, nonzero = a line pixel.

    Returns:
        (H, W) float32 sketch image in [0, 1]: dark (0) lines on white (1) paper.
    """
    return np.where(_plane(data, size, "sketch", "nonzero = line") > 0, 0.0, 1.0).astype(np.float32)


def _plane(data: bytes, size: tuple[int, int], what: str, meaning: str) -> np.ndarray:
    height, width = size
    if len(data) != height * width:
        raise InputError(
            f"{what}: expected {height}x{width} = {height * width} bytes (uint8, row-major, "
            f"{meaning}), got {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width)


def read_mask_upload(mask: Upload, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """Decode an uploaded mask image (white = remove; any mode; the photo's aspect ratio) at
    the photo's (H, W), grown like `semia remove` grows it: (H, W) bool."""
    from semia.apps.removal import read_mask

    with _Spooled([mask], max_pixels) as (path,):
        return read_mask(path, size)


def read_sketch_upload(sketch: Upload, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """Decode an uploaded sketch image (dark lines on light paper, or light on dark; the
    photo's aspect ratio, any size) into its lines at the photo's (H, W), as a sketch image:
    (H, W) float32, 0 on the lines and 1 elsewhere."""
    from semia.apps.sketch import sketch_edges

    with _Spooled([sketch], max_pixels) as (path,):
        lines = sketch_edges(read_image(path), size, sketch.describe())
    return 1.0 - lines


def ids_to_base64(ids: np.ndarray) -> str:
    """(H, W) ids in 0..255 -> base64 of the row-major uint8 bytes."""
    return base64.b64encode(np.ascontiguousarray(ids, dtype=np.uint8).tobytes()).decode("ascii")


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) float in [0, 1] or uint8 -> PNG bytes."""
    array = image if image.dtype == np.uint8 else to_uint8(image)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
