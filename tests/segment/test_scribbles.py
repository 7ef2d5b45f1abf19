"""Scribble images: snapping of anti-aliased / JPEG strokes, clear errors, automatic strokes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from semia.io import InputError, LabelMap
from semia.segment import Scribbles, demo_scribbles, read_scribbles, scribbles_from_rgba

COLOURS = np.array([[230, 30, 30], [30, 160, 40], [40, 60, 220]], np.uint8)


def stroke_coverage(height: int, width: int, factor: int = 4) -> np.ndarray:
    """(3, H, W) float coverage in [0, 1] of three diagonal-ish strokes, box-supersampled."""
    yy, xx = np.mgrid[0 : height * factor, 0 : width * factor] / factor
    masks = [
        np.abs(yy - 0.3 * xx - 5) < 2.5,  # a slanted stroke, 5 px wide
        (np.abs(xx - 0.7 * width) < 2.2) & (yy > 8) & (yy < height - 8),  # vertical, 4.4 px
        (yy - 0.75 * height) ** 2 + (xx - 0.3 * width) ** 2 < 4.0**2,  # a dot, 8 px across
    ]
    cover = np.stack(masks).astype(np.float32)
    return cover.reshape(3, height, factor, width, factor).mean(axis=(2, 4))


def render(cover: np.ndarray, transparent: bool) -> np.ndarray:
    """Anti-aliased strokes painted in order (each over the last), over white (RGB) or over
    transparency (straight-alpha RGBA), as a paint program does."""
    colour = np.zeros((*cover.shape[1:], 3), np.float32)  # premultiplied
    alpha = np.zeros(cover.shape[1:], np.float32)
    for k in range(len(cover)):
        a = cover[k][..., None]
        colour = a * COLOURS[k].astype(np.float32) + (1 - a) * colour
        alpha = cover[k] + (1 - cover[k]) * alpha
    if transparent:
        straight = colour / np.maximum(alpha, 1e-6)[..., None]
        return np.concatenate([straight, 255 * alpha[..., None]], axis=2).round().astype(np.uint8)
    return (colour + (1 - alpha[..., None]) * 255.0).round().astype(np.uint8)


def top_stroke(cover: np.ndarray) -> np.ndarray:
    """(H, W) index of the stroke seen on top where coverage is full, else the most covering."""
    top = cover.argmax(0)
    for k in range(len(cover)):
        top[cover[k] >= 0.75] = k
    return top


def class_of(palette: np.ndarray) -> np.ndarray:
    """For each palette entry, the index of the nearest COLOURS entry."""
    d = np.linalg.norm(palette[:, None].astype(float) - COLOURS[None].astype(float), axis=2)
    return d.argmin(1)


@pytest.mark.parametrize("transparent", [False, True])
def test_antialiased_strokes_snap_to_the_solid_colours(transparent: bool, tmp_path):
    cover = stroke_coverage(48, 64)
    path = tmp_path / "strokes.png"
    Image.fromarray(render(cover, transparent)).save(path)
    scribbles = read_scribbles(path)
    assert scribbles.num_classes == 3
    # the palette is the exact stroke colours (from the solid centres), biggest stroke first
    assert sorted(map(tuple, scribbles.palette.tolist())) == sorted(map(tuple, COLOURS.tolist()))
    classes = class_of(scribbles.palette)
    ids = np.where(scribbles.ids >= 0, classes[np.maximum(scribbles.ids, 0)], -1)
    mostly = cover.max(0) >= 0.75
    assert (ids[mostly] == top_stroke(cover)[mostly]).all()
    assert (ids[cover.max(0) <= 0.25] == -1).all()  # faint fringes are background


def test_jpeg_strokes_keep_three_classes(tmp_path):
    cover = stroke_coverage(48, 64)
    path = tmp_path / "strokes.jpg"
    Image.fromarray(render(cover, transparent=False)).save(path, quality=90)
    scribbles = read_scribbles(path)
    assert scribbles.num_classes == 3
    assert (
        np.abs(
            scribbles.palette[np.argsort(class_of(scribbles.palette))].astype(int) - COLOURS
        ).max()
        <= 40
    )
    classes = class_of(scribbles.palette)
    ids = np.where(scribbles.ids >= 0, classes[np.maximum(scribbles.ids, 0)], -1)
    solid = cover.max(0) >= 0.99
    assert (ids[solid] == top_stroke(cover)[solid]).mean() > 0.97


def test_jpeg_chroma_fringes_of_saturated_strokes(tmp_path):
    """JPEG stores colour at half resolution: a saturated red or blue stroke on white gets a
    fringe whose brightness and colour mix in different shares, off every RGB blend. It is the
    stroke's fringe, not a stroke of its own; a stroke too thin to survive is refused with
    advice about JPEG."""
    rgb = np.full((64, 96, 3), 255, np.uint8)
    truth = np.full((64, 96), -1)
    for k, (rows, colour) in enumerate(
        [((5, 12), (255, 0, 0)), ((52, 59), (0, 0, 255)), ((28, 36), (0, 200, 0))]
    ):
        rgb[rows[0] : rows[1], 5:90] = colour
        truth[rows[0] : rows[1], 5:90] = k
    Image.fromarray(rgb).save(tmp_path / "s.jpg", quality=95)  # 4:2:0, PIL's default
    scribbles = read_scribbles(tmp_path / "s.jpg")
    assert scribbles.num_classes == 3
    inner = ndimage.binary_erosion(truth >= 0, np.ones((3, 3)))
    for k in range(3):
        got = scribbles.ids[inner & (truth == k)]
        assert (got == np.bincount(got[got >= 0]).argmax()).mean() > 0.97
    thin = np.full((64, 96, 3), 255, np.uint8)
    thin[5:8, 5:90], thin[55:58, 5:90] = (0, 253, 255), (0, 249, 0)
    Image.fromarray(thin).save(tmp_path / "thin.jpg", quality=70)
    with pytest.raises(InputError, match="JPEG smears stroke colours"):
        read_scribbles(tmp_path / "thin.jpg")


def test_no_strokes_raises(tmp_path):
    path = tmp_path / "blank.png"
    Image.fromarray(np.full((20, 30, 3), 255, np.uint8)).save(path)
    with pytest.raises(InputError, match="no strokes"):
        read_scribbles(path)
    Image.fromarray(np.zeros((20, 30, 4), np.uint8)).save(path)
    with pytest.raises(InputError, match="no strokes"):
        read_scribbles(path)


def test_a_colour_that_is_nowhere_solid_raises():
    rgb = np.full((40, 60, 3), 255, np.uint8)
    rgb[5:10, 5:30] = COLOURS[0]  # a proper stroke
    yy, xx = np.mgrid[0:40, 0:60]
    soft = np.exp(-((yy - 25.0) ** 2) / 0.8)[..., None] * (xx > 10)[..., None]  # a 1 px blur
    purple = np.array([150, 0, 200], np.float32)
    blended = soft * purple + (1 - soft) * rgb.astype(np.float32)
    rgb = blended.round().astype(np.uint8)
    rgb[25, 11:] = [170, 80, 90]  # the soft line's core is a colour that is not a blend
    with pytest.raises(InputError, match=r"#aa505a near x=\d+, y=2[45] is not solid anywhere"):
        scribbles_from_rgba(rgb)


def test_only_soft_strokes_raise():
    rgb = np.full((30, 30, 3), 255, np.uint8)
    rgb[10, 3:27] = [200, 20, 20]  # 1 px wide: no pixel has a solid 3x3 neighbourhood
    rgb[20, 3:27] = [20, 20, 200]
    with pytest.raises(InputError, match="solid"):
        scribbles_from_rgba(rgb)


def test_unreadable_file_raises(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        read_scribbles(path)
    with pytest.raises(InputError, match="no such file"):
        read_scribbles(tmp_path / "missing.png")


def test_downscaling_keeps_thin_strokes():
    ids = np.full((40, 80), -1, np.int64)
    ids[10, 5:75] = 0  # 1 px line: plain nearest sampling at 1/4 would drop most of it
    ids[30:33, 40:43] = 1
    small = Scribbles(ids, COLOURS[:2]).resized((10, 20))
    assert (small.ids[2] == 0).sum() >= 17
    assert (small.ids == 1).sum() >= 1
    assert small.resized((40, 80)).ids.shape == (40, 80)


def layout(height: int = 90, width: int = 120) -> LabelMap:
    yy, xx = np.mgrid[0:height, 0:width]
    ids = np.zeros((height, width), np.int64)
    ids[yy > 0.6 * height] = 1
    ids[(yy - 0.3 * height) ** 2 + (xx - 0.7 * width) ** 2 < (0.15 * height) ** 2] = 2
    ids[(yy > 0.8 * height) & (xx < 0.2 * width)] = 3  # a small corner region
    return LabelMap(
        ids=ids,
        palette=np.array([[0, 200, 255], [0, 180, 0], [255, 150, 0], [90, 90, 90]], np.uint8),
    )


def test_dense_demo_strokes_stay_inside_and_within_budget():
    labels = layout()
    strokes = demo_scribbles(labels, dense=True, seed=3)
    drawn = strokes.ids >= 0
    assert 0.005 < drawn.mean() <= 0.02
    assert (strokes.ids[drawn] == labels.ids[drawn]).all()  # every stroke inside its region
    assert set(np.unique(strokes.ids[drawn])) == {0, 1, 2, 3}
    edges = np.zeros(labels.ids.shape, bool)
    edges[1:] |= labels.ids[1:] != labels.ids[:-1]
    edges[:, 1:] |= labels.ids[:, 1:] != labels.ids[:, :-1]
    assert ndimage.distance_transform_edt(~edges)[drawn].min() >= 2  # away from boundaries
    again = demo_scribbles(labels, dense=True, seed=3)
    assert np.array_equal(again.ids, strokes.ids)
    assert not np.array_equal(demo_scribbles(labels, dense=True, seed=4).ids, strokes.ids)


def test_sparse_demo_strokes_are_one_per_class():
    labels = layout()
    strokes = demo_scribbles(labels, dense=False)
    for k in range(4):
        _, count = ndimage.label(strokes.ids == k, structure=np.ones((3, 3)))
        assert count == 1
    assert np.array_equal(strokes.palette, labels.palette)


def test_rgba_round_trip_through_a_png():
    labels = layout()
    strokes = demo_scribbles(labels, dense=True)
    buffer = io.BytesIO()
    Image.fromarray(strokes.to_rgba()).save(buffer, format="PNG")
    buffer.seek(0)
    back = scribbles_from_rgba(np.asarray(Image.open(buffer)))
    colours = {tuple(c) for c in back.palette.tolist()}
    assert colours == {tuple(c) for c in labels.palette.tolist()}
    lookup = {tuple(c): k for k, c in enumerate(labels.palette.tolist())}
    mapped = np.array([lookup[tuple(c)] for c in back.palette.tolist()])
    assert np.array_equal(np.where(back.ids >= 0, mapped[np.maximum(back.ids, 0)], -1), strokes.ids)
