"""Reading and writing photos: any common format, mode and orientation -> (H, W, 3) float32."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from semia.errors import InputError
from semia.io.arrays import as_image, fit_size, resize_image, to_uint8
from semia.io.files import atomic_save

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


MAX_PIXELS = 150_000_000  # inputs with more pixels (about 12000 x 12000) are refused


def _too_large(path: Path, what: str, width: int, height: int) -> InputError:
    return InputError(
        f"{what} {path}: {width}x{height} px is above semia's limit of {MAX_PIXELS / 1e6:.0f} "
        "megapixels; downscale it first (any image editor, or `convert -resize`)"
    )


def open_image(path: str | Path, what: str, max_size: int | None = None) -> Image.Image:
    """Open and fully decode an image file, EXIF orientation applied.

    Files above `MAX_PIXELS` are refused from their header, before any pixel is decoded. With
    `max_size`, a JPEG is decoded at a reduced scale (still at least twice max_size), so a huge
    photo costs little memory.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path}: the file is empty")
    try:
        with warnings.catch_warnings():  # semia applies its own limit, below PIL's error one
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
            if im.width * im.height > MAX_PIXELS:
                raise _too_large(path, what, im.width, im.height)
            if max_size is not None and im.format == "JPEG":
                im.draft(im.mode, (2 * max_size, 2 * max_size))
            im.load()
        file_format = im.format
        im = ImageOps.exif_transpose(im)
        im.format = file_format  # exif_transpose returns a copy without it
    except Image.DecompressionBombError:
        raise InputError(
            f"{what} {path}: the image is above semia's limit of {MAX_PIXELS / 1e6:.0f} "
            "megapixels; downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise InputError(
            f"{what} {path}: not a readable image (supported: {', '.join(IMAGE_SUFFIXES)})"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{what} {path}: the file is damaged or truncated ({e})") from None
    if im.width == 0 or im.height == 0:
        raise InputError(f"{what} {path}: the image has no pixels")
    return im


def is_lossy(im: Image.Image) -> bool:
    """Whether an image opened by `open_image` was stored lossily (JPEG, lossy WebP): its
    colours carry compression noise."""
    return im.format in ("JPEG", "MPO") or (im.format == "WEBP" and not im.info.get("lossless"))


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation tag of an image file (1, upright, when it has none or is no image);
    semia applies it on reading, as viewers do."""
    try:
        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return 1


def file_size(path: str | Path, what: str = "image") -> tuple[int, int]:
    """(height, width) of an image or .npy file as it will be read (EXIF rotation applied),
    without decoding the pixels."""
    path = Path(path)
    if path.suffix.lower() == ".npy" and path.exists():
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as e:
            raise InputError(f"{what} {path}: not a readable .npy array ({e})") from None
        if len(shape) != 2:
            raise InputError(f"{what} {path}: expected a 2-D array of ids, got shape {shape}")
        return int(shape[0]), int(shape[1])
    if not path.is_file() or path.stat().st_size == 0:
        return open_image(path, what).size[::-1]  # raises the right message
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise _too_large(path, what, width, height)
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation: rotated 90
                    width, height = height, width
    except Image.DecompressionBombError:
        raise InputError(
            f"{what} {path}: the image is above semia's limit of {MAX_PIXELS / 1e6:.0f} "
            "megapixels; downscale it first"
        ) from None
    except (OSError, SyntaxError, ValueError):
        return open_image(path, what).size[::-1]  # raises the right message
    return height, width


def _image_to_float(im: Image.Image, path: Path) -> np.ndarray:
    """Any PIL mode -> (H, W, 3) float32 in [0, 1]. Transparency is composited over white."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.float32)
        a = a / (65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0)
        return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im).astype(np.float32)
        a = a / 255.0 if a.max() > 1.0 else a
        return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float32) / 255.0
        alpha = rgba[..., 3:]
        if alpha.min() < 1.0:
            log.info("%s: transparent pixels composited over white", path)
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return np.asarray(im.convert("RGB")).astype(np.float32) / 255.0


def read_image(path: str | Path, max_size: int | None = None) -> np.ndarray:
    """Read a photo.

    PNG, JPEG, WebP, TIFF, BMP; RGB, RGBA / LA (alpha composited over white), grayscale, 16-bit,
    palette; EXIF orientation applied.

    Args:
        path: image file.
        max_size: if given, images whose longest side exceeds it are downscaled (antialiased
            bicubic) to that longest side.

    Returns:
        (H, W, 3) float32 array in [0, 1].
    """
    path = Path(path)
    height, width = file_size(path, "image")
    size = fit_size(height, width, max_size)  # from the file's size: the label map's too
    im = open_image(path, "image", max_size)
    factor = min(im.height // (4 * size[0]), im.width // (4 * size[1]))
    if factor >= 2 and im.mode in ("RGB", "RGBA", "L", "LA"):  # cheap uint8 pre-shrink
        im = im.reduce(factor)
    if size != (height, width):
        log.info("%s: downscaled from %dx%d to %dx%d", path, width, height, size[1], size[0])
    return resize_image(_image_to_float(im, path), size)


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an image atomically (format from the suffix; JPEG at quality 95).

    Args:
        path: destination; parent folders are created.
        image: (H, W, 3) float in [0, 1] or uint8.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(
            f"output {path}: unsupported suffix {path.suffix!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    image = np.asarray(image)
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating):
            raise InputError(
                f"output {path}: an image to write must be uint8 (0..255) or float in [0, 1], "
                f"got {image.dtype}; convert it first"
            )
        image = as_image(image, f"output {path}")
    array = to_uint8(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    im = Image.fromarray(array)
    options = {"quality": 95} if suffix in (".jpg", ".jpeg", ".webp") else {}
    atomic_save(path, lambda tmp: im.save(tmp, **options))
    return path
