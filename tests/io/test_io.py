"""Readers and writers on real files of every kind users have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import PALETTE, SHARED, antialias, scene_ids
from PIL import Image

from semia.io import (
    InputError,
    LabelMap,
    load_scene,
    match_target,
    read_image,
    read_label_map,
    read_target,
    write_image,
)


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


# --- colour-coded label maps ---------------------------------------------------------------


def test_clean_rgb_label_map(tmp_path):
    ids = scene_ids()
    Image.fromarray(PALETTE[ids]).save(tmp_path / "l.png")
    lab = read_label_map(tmp_path / "l.png")
    assert lab.num_classes == 3
    assert {tuple(c) for c in lab.palette} == {tuple(c) for c in PALETTE}
    assert np.array_equal(lab.palette[lab.ids], PALETTE[ids])  # every pixel exact


def test_antialiased_label_map_finds_real_palette(tmp_path):
    ids = scene_ids(90, 120)
    colours = antialias(ids)
    n_colours = len(np.unique(colours.reshape(-1, 3), axis=0))
    assert n_colours > 10  # the fixture really is anti-aliased
    Image.fromarray(colours).save(tmp_path / "aa.png")
    lab = read_label_map(tmp_path / "aa.png")
    assert lab.num_classes == 3  # blends at the edges did not become classes
    assert {tuple(c) for c in lab.palette} == {tuple(c) for c in PALETTE}
    # relabelled ids agree with the truth except within a pixel of an edge
    truth_colours = PALETTE[np.roll(ids, 0)]
    got = lab.palette[lab.ids]
    assert (got == truth_colours).all(axis=2).mean() > 0.97


def test_edge_blend_never_becomes_third_class(tmp_path):
    """A sky/ground blend whose colour is nearest to the tree colour stays sky or ground."""
    ids = np.zeros((40, 40), np.int64)
    ids[20:] = 2
    ids[:5, :5] = 1  # a small tree elsewhere so the tree colour is in the palette
    colours = PALETTE[ids].copy()
    colours[20] = (PALETTE[0].astype(int) + PALETTE[2]) // 2  # a 1-px blend row
    Image.fromarray(colours).save(tmp_path / "blend.png")
    lab = read_label_map(tmp_path / "blend.png")
    assert lab.num_classes == 3
    tree = next(k for k in range(3) if tuple(lab.palette[k]) == tuple(PALETTE[1]))
    assert not (lab.ids[20] == tree).any()


def test_jpeg_label_map(tmp_path):
    ids = scene_ids(90, 120)
    Image.fromarray(antialias(ids)).save(tmp_path / "l.jpg", quality=75)
    lab = read_label_map(tmp_path / "l.jpg")
    assert lab.num_classes == 3
    dist = np.abs(lab.palette.astype(int)[:, None] - PALETTE.astype(int)[None]).sum(2).min(1)
    assert (dist <= 12).all()  # found colours are the true ones up to JPEG noise


def test_rgba_label_map_with_transparent_pixels(tmp_path):
    ids = scene_ids()
    rgba = np.concatenate([PALETTE[ids], np.full((*ids.shape, 1), 255, np.uint8)], axis=2)
    rgba[10:13, 10:13, 3] = 0  # a transparent hole inside the sky
    rgba[30, :, 3] = 200  # partly transparent row keeps its colour
    Image.fromarray(rgba, "RGBA").save(tmp_path / "l.png")
    lab = read_label_map(tmp_path / "l.png")
    assert lab.num_classes == 3
    assert np.array_equal(lab.palette[lab.ids], PALETTE[ids])  # hole filled from around


def test_small_classes_of_a_crisp_map_are_labels(tmp_path):
    """A traffic light of 8 px and a 1-px wire have no solid interior, yet they are labels: their
    colours are no blend of the labels around them (as a driving frame's small classes)."""
    ids = scene_ids()
    colours = PALETTE[ids].copy()
    colours[5:7, 10:14] = (250, 170, 30)  # 2x4 px in the sky
    colours[50, 20:60] = (128, 64, 128)  # a 1-px line on the ground
    Image.fromarray(colours).save(tmp_path / "l.png")
    lab = read_label_map(tmp_path / "l.png")
    assert lab.num_classes == 5
    assert np.array_equal(lab.palette[lab.ids], colours)  # every pixel exact


def test_blends_in_linear_light_are_not_labels(tmp_path):
    """An edge row blended in linear light (as some painting programs do) lies off the sRGB
    segment between its two sides; it still takes one of them."""
    ids = scene_ids()
    colours = PALETTE[ids].copy()
    lin = (PALETTE[[0, 2]].astype(np.float64) / 255) ** 2.2
    colours[41, :] = np.round(255 * (lin.mean(0) ** (1 / 2.2))).astype(np.uint8)  # sky | ground
    ids[41, :] = 0
    colours[:41][ids[:41] == 2] = PALETTE[0]  # the row is the edge: sky above, ground below
    colours[42:][ids[42:] == 0] = PALETTE[2]
    Image.fromarray(colours).save(tmp_path / "l.png")
    lab = read_label_map(tmp_path / "l.png")
    assert lab.num_classes == 3


def test_a_mostly_transparent_label_map_is_flagged(tmp_path, caplog):
    """A label drawn over the object only, the rest left transparent: the fill from the
    neighbours is announced with the share it covers, not done silently."""
    ids = scene_ids()
    rgba = np.concatenate([PALETTE[ids], np.full((*ids.shape, 1), 255, np.uint8)], axis=2)
    rgba[ids != 1, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "l.png")
    with caplog.at_level("WARNING"):
        lab = read_label_map(tmp_path / "l.png")
    share = round(100 * float((ids != 1).mean()))
    assert f"{share} % of its pixels are transparent" in caplog.text
    assert lab.num_classes == 1


def test_transparent_target_pixels_keep_the_source_labels(tmp_path):
    """A target drawn as a layer over the source: only the edit is painted, the rest is
    transparent and keeps the source's labels (at the target's size)."""
    ids = scene_ids()
    Image.fromarray(PALETTE[ids]).save(tmp_path / "l.png")
    want = ids.copy()
    want[ids == 1] = 0  # the tree painted over with sky...
    want[20:35, 5:20] = 1  # ...and drawn again on the left
    layer = np.zeros((*ids.shape, 4), np.uint8)
    edit = (want != ids) | (ids == 1)
    layer[edit, :3] = PALETTE[want[edit]]
    layer[edit, 3] = 255
    big = Image.fromarray(layer, "RGBA").resize((160, 120), Image.Resampling.NEAREST)
    big.save(tmp_path / "t.png")  # twice the source's size, same aspect ratio
    tgt = read_target(tmp_path / "t.png", read_label_map(tmp_path / "l.png"))
    assert tgt.size == (120, 160)
    assert np.array_equal(tgt.palette[tgt.ids[::2, ::2]], PALETTE[want])


def test_a_photo_given_as_a_label_map_is_flagged(tmp_path, caplog):
    rng = np.random.default_rng(0)
    photo = PALETTE[scene_ids()].astype(float) * 0.8 + rng.normal(0, 12, (60, 80, 3)) + 20
    Image.fromarray(photo.clip(0, 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(antialias(scene_ids())).save(tmp_path / "aa.png")
    Image.fromarray(antialias(scene_ids())).save(tmp_path / "aa.jpg", quality=50)
    with caplog.at_level("WARNING"):
        read_label_map(tmp_path / "aa.png")
        read_label_map(tmp_path / "aa.jpg")
        assert "as in a photo" not in caplog.text
        read_label_map(tmp_path / "photo.png")
    assert "photo.png: most of its pixels have colours of their own" in caplog.text


def test_close_but_distinct_colours_stay_apart(tmp_path):
    """Two real labels 20 apart in RGB (as in face-parsing palettes) are not merged."""
    pal = np.array([[255, 255, 255], [0, 80, 100], [0, 60, 100]], np.uint8)
    ids = np.zeros((50, 50), np.int64)
    ids[10:30, 10:30] = 1
    ids[35:45, 35:45] = 2
    Image.fromarray(pal[ids]).save(tmp_path / "l.png")
    assert read_label_map(tmp_path / "l.png").num_classes == 3


# --- id label maps ---------------------------------------------------------------------------


def test_palette_png_indices_are_ids(tmp_path):
    ids = scene_ids() * 3  # indices 0, 3, 6
    im = Image.fromarray(ids.astype(np.uint8), "P")
    flat = np.zeros((256, 3), np.uint8)
    flat[0], flat[3], flat[6] = PALETTE
    im.putpalette(flat.ravel().tolist())
    im.save(tmp_path / "p.png")
    lab = read_label_map(tmp_path / "p.png")
    assert lab.kind == "palette"
    assert lab.values == (0, 3, 6)
    assert np.array_equal(lab.ids, ids // 3)
    assert np.array_equal(lab.palette, PALETTE)


def _palette_png(path: Path, ids: np.ndarray, colours: np.ndarray) -> None:
    im = Image.fromarray(ids.astype(np.uint8), "P")
    flat = np.zeros((256, 3), np.uint8)
    flat[: len(colours)] = colours
    im.putpalette(flat.ravel().tolist())
    im.save(path)


def test_palette_target_with_another_colour_order_is_matched_by_colour(tmp_path):
    """Two palette PNGs of one scene saved by different programs number the colours otherwise:
    the target's labels are its colours, not its indices."""
    ids = scene_ids()
    order = np.array([2, 0, 1])  # the source file's index i holds PALETTE[order[i]]
    _palette_png(tmp_path / "l.png", np.argsort(order)[ids], PALETTE[order])
    target = np.roll(ids, 12, axis=1)
    _palette_png(tmp_path / "t.png", target, PALETTE)  # index = PALETTE row
    src = read_label_map(tmp_path / "l.png")
    tgt = read_target(tmp_path / "t.png", src)
    assert np.array_equal(tgt.palette[tgt.ids], PALETTE[target])
    # the same palette in both: indices are the labels, as before
    _palette_png(tmp_path / "t2.png", np.argsort(order)[target], PALETTE[order])
    tgt = read_target(tmp_path / "t2.png", src)
    assert np.array_equal(tgt.palette[tgt.ids], PALETTE[target])


@pytest.mark.parametrize("bits", [8, 16])
def test_grayscale_ids(tmp_path, bits):
    ids = scene_ids()
    values = np.array([7, 11, 26])[ids]  # Cityscapes-style train ids
    if bits == 8:
        Image.fromarray(values.astype(np.uint8), "L").save(tmp_path / "g.png")
    else:
        Image.fromarray(values.astype(np.uint16) * 1000).save(tmp_path / "g.png")
    lab = read_label_map(tmp_path / "g.png")
    assert lab.kind == "ids"
    assert lab.values == ((7, 11, 26) if bits == 8 else (7000, 11000, 26000))
    assert np.array_equal(lab.ids, ids)


def test_smoothly_resized_grayscale_ids_keep_their_labels(tmp_path, caplog):
    """Ids resized with a bilinear filter hold in-between values along every edge; they are
    the labels on either side again (with a warning), not new classes."""
    small = Image.fromarray(np.array([7, 11, 26], np.uint8)[scene_ids()])
    small.resize((200, 150), Image.Resampling.BILINEAR).save(tmp_path / "ids.png")
    assert len(np.unique(np.asarray(Image.open(tmp_path / "ids.png")))) > 6  # really smoothed
    with caplog.at_level("WARNING"):
        lab = read_label_map(tmp_path / "ids.png")
    assert lab.values == (7, 11, 26)
    truth = np.asarray(small.resize((200, 150), Image.Resampling.NEAREST))
    assert (np.array(lab.values)[lab.ids] == truth).mean() > 0.97
    assert "nearest-neighbour" in caplog.text


def test_a_smoothed_edge_through_a_real_label_value_is_no_ring_of_it(tmp_path):
    """Sky 0 above ground 1, a tree 2 in the sky: bilinear upscaling puts 1s along the sky/tree
    edge; they are that edge's blend, not a ring of ground around the tree."""
    ids = np.zeros((64, 96), np.uint8)
    ids[32:] = 1
    ids[10:28, 30:50] = 2  # the tree, in the sky only
    small = Image.fromarray(ids)
    small.resize((192, 128), Image.Resampling.BILINEAR).save(tmp_path / "ids.png")
    lab = read_label_map(tmp_path / "ids.png")
    got = np.array(lab.values)[lab.ids]
    truth = np.asarray(small.resize((192, 128), Image.Resampling.NEAREST))
    assert (got[:60] == 1).sum() == 0  # no ground in the sky
    assert (got == truth).mean() > 0.98


def test_crisp_ids_with_a_small_class_between_its_neighbours_stay(tmp_path):
    """A crisp id map whose one small class has an id between its neighbours' (a traffic sign,
    19, between building 11 and sky 23) is not mistaken for a smoothed map."""
    values = np.array([23, 11, 7])[scene_ids()]
    values[10:12, 30:33] = 19
    Image.fromarray(values.astype(np.uint8)).save(tmp_path / "ids.png")
    lab = read_label_map(tmp_path / "ids.png")
    assert lab.values == (7, 11, 19, 23)
    assert np.array_equal(np.array(lab.values)[lab.ids], values)


def test_jpeg_grayscale_maps(tmp_path):
    """Grey levels far apart survive JPEG (read as colours, a PNG target in the same greys
    matches them); small ids do not, and say so."""
    grey = np.array([0, 128, 255])[scene_ids()].astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.jpg", quality=85)
    lab = read_label_map(tmp_path / "g.jpg")
    assert lab.num_classes == 3
    assert (np.abs(lab.palette[lab.ids][..., 0].astype(int) - grey) <= 6).mean() > 0.97
    Image.fromarray(np.roll(grey, 9, axis=1)).save(tmp_path / "t.png")
    tgt = read_target(tmp_path / "t.png", lab)
    assert (np.abs(tgt.palette[tgt.ids][..., 0].astype(int) - np.roll(grey, 9, axis=1)) <= 6).all()
    Image.fromarray(scene_ids().astype(np.uint8)).save(tmp_path / "ids.jpg", quality=85)
    with pytest.raises(InputError, match="losslessly"):
        read_label_map(tmp_path / "ids.jpg")


def test_npy_ids_and_matching_target(tmp_path):
    ids = scene_ids()
    np.save(tmp_path / "l.npy", ids * 5)
    lab = read_label_map(tmp_path / "l.npy")
    assert lab.values == (0, 5, 10)
    target = np.flipud(ids) * 5
    np.save(tmp_path / "t.npy", target)
    assert np.array_equal(read_target(tmp_path / "t.npy", lab).ids, np.flipud(ids))
    np.save(tmp_path / "bad.npy", np.where(ids == 1, 99, ids * 5))
    with pytest.raises(InputError, match="value 99"):
        read_target(tmp_path / "bad.npy", lab)
    filled = read_target(tmp_path / "bad.npy", lab, unknown="nearest")
    assert set(np.unique(filled.ids)) <= {0, 2}  # the unknown blob filled from its surroundings


def test_npy_rejects_bad_arrays(tmp_path):
    np.save(tmp_path / "f.npy", np.random.default_rng(0).random((5, 5)))
    with pytest.raises(InputError, match="integer"):
        read_label_map(tmp_path / "f.npy")
    np.save(tmp_path / "3d.npy", np.zeros((2, 3, 4), np.int64))
    with pytest.raises(InputError, match="2-D"):
        read_label_map(tmp_path / "3d.npy")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "p.png")
    with pytest.raises(InputError, match=r"3d.npy: expected a 2-D array of ids, got shape \(2, 3"):
        load_scene(tmp_path / "p.png", tmp_path / "3d.npy")  # the size check names the shape
    (tmp_path / "notes.npy").write_text("0 1\n1 0\n")  # text, not numpy.save's format
    with pytest.raises(InputError, match=r"notes.npy: not a .npy array \(saved with numpy.save\)$"):
        read_label_map(tmp_path / "notes.npy")


def test_photo_given_as_grayscale_label_map_is_refused(tmp_path):
    noise = np.random.default_rng(0).integers(0, 65535, (64, 64)).astype(np.uint16)
    Image.fromarray(noise).save(tmp_path / "photo.png")
    with pytest.raises(InputError, match="photo"):
        read_label_map(tmp_path / "photo.png")


# --- targets ---------------------------------------------------------------------------------


def test_target_snaps_to_source_palette_and_may_differ_in_size(tmp_path, caplog):
    ids = scene_ids(90, 120)
    Image.fromarray(antialias(ids)).save(tmp_path / "l.png")
    target_ids = scene_ids(60, 150)  # another size and aspect ratio
    Image.fromarray(antialias(target_ids)).save(tmp_path / "t.png")
    src = read_label_map(tmp_path / "l.png")
    with caplog.at_level("INFO"):
        tgt = read_target(tmp_path / "t.png", src)
    assert "t.png is 150x60, another shape than the source's 120x90" in caplog.text
    assert tgt.size == (60, 150)
    assert np.array_equal(tgt.palette, src.palette)
    truth = PALETTE[target_ids]
    assert (tgt.palette[tgt.ids] == truth).all(axis=2).mean() > 0.95


def test_unknown_target_colour_is_listed(tmp_path):
    ids = scene_ids()
    Image.fromarray(PALETTE[ids]).save(tmp_path / "l.png")
    colours = PALETTE[ids].copy()
    colours[40:55, 5:25] = (200, 0, 200)  # a purple the source never had
    Image.fromarray(colours).save(tmp_path / "t.png")
    src = read_label_map(tmp_path / "l.png")
    with pytest.raises(InputError) as err:
        read_target(tmp_path / "t.png", src)
    message = str(err.value)
    assert "(200, 0, 200)" in message and "300 px" in message and "nearest" in message
    tgt = read_target(tmp_path / "t.png", src, unknown="nearest")
    assert np.isin(tgt.ids, np.arange(3)).all()
    _, unknown = match_target(tmp_path / "t.png", src)
    assert len(unknown) == 1 and unknown[0].pixels == 300
    assert 40 <= unknown[0].location[0] < 55 and 5 <= unknown[0].location[1] < 25


def test_a_thin_stroke_of_a_new_colour_is_unknown(tmp_path):
    """A 2-px line drawn in a colour the source lacks is reported, not turned into sky."""
    ids = scene_ids()
    Image.fromarray(PALETTE[ids]).save(tmp_path / "l.png")
    colours = PALETTE[ids].copy()
    colours[10:12, 5:75] = (255, 0, 255)
    Image.fromarray(colours).save(tmp_path / "t.png")
    src = read_label_map(tmp_path / "l.png")
    _, unknown = match_target(tmp_path / "t.png", src)
    assert [(u.colour, u.pixels) for u in unknown] == [((255, 0, 255), 140)]
    with pytest.raises(InputError, match="255, 0, 255"):
        read_target(tmp_path / "t.png", src)
    # drawn in a source colour, the same stroke is that label
    colours[10:12, 5:75] = PALETTE[2]
    Image.fromarray(colours).save(tmp_path / "t2.png")
    tgt = read_target(tmp_path / "t2.png", src)
    assert np.array_equal(tgt.palette[tgt.ids], colours)


def test_grayscale_target_against_colour_source_is_refused(tmp_path):
    ids = scene_ids()
    Image.fromarray(PALETTE[ids]).save(tmp_path / "l.png")
    Image.fromarray(ids.astype(np.uint8), "L").save(tmp_path / "t.png")
    with pytest.raises(InputError, match="grayscale"):
        read_target(tmp_path / "t.png", read_label_map(tmp_path / "l.png"))


# --- images ----------------------------------------------------------------------------------


def _photo(h: int = 60, w: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx / w, yy / h, 0.5 + 0 * xx], axis=2).astype(np.float32)


def test_read_image_modes(tmp_path):
    photo = (_photo() * 255).round().astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "rgb.png")
    assert np.allclose(read_image(tmp_path / "rgb.png"), photo / 255.0, atol=1e-6)
    rgba = np.concatenate([photo, np.full((*photo.shape[:2], 1), 255, np.uint8)], axis=2)
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = read_image(tmp_path / "rgba.png")
    assert np.allclose(img[0, 0], 1.0)  # transparent -> white
    assert np.allclose(img[1:], photo[1:] / 255.0, atol=1e-6)
    gray16 = (np.linspace(0, 65535, 80)[None].repeat(60, 0)).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    g = read_image(tmp_path / "g16.png")
    assert g.shape == (60, 80, 3) and abs(g.max() - 1.0) < 1e-4 and g.min() == 0.0
    Image.fromarray(photo).convert("P").save(tmp_path / "pal.png")
    assert read_image(tmp_path / "pal.png").shape == (60, 80, 3)
    Image.fromarray(photo).save(tmp_path / "x.webp", lossless=True)
    assert np.allclose(read_image(tmp_path / "x.webp"), photo / 255.0, atol=1e-6)
    Image.fromarray(photo).save(tmp_path / "x.tiff")
    assert np.allclose(read_image(tmp_path / "x.tiff"), photo / 255.0, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    photo = (_photo(30, 50) * 255).astype(np.uint8)
    im = Image.fromarray(photo)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    img = read_image(tmp_path / "rot.jpg")
    assert img.shape == (50, 30, 3)


def test_a_label_map_drawn_on_the_raw_pixels_of_a_rotated_photo(tmp_path, caplog):
    """The photo carries an EXIF rotation, the label map does not: where the sizes tell (not
    square) the error says so and how to fix it; where they cannot (square) a warning does."""
    ids = scene_ids(30, 50)
    Image.fromarray(PALETTE[ids]).save(tmp_path / "l.png")
    im = Image.fromarray((_photo(30, 50) * 255).astype(np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    with pytest.raises(InputError, match=r"EXIF orientation 6.*Rotate the label map"):
        load_scene(tmp_path / "rot.jpg", tmp_path / "l.png")
    square = Image.fromarray((_photo(40, 40) * 255).astype(np.uint8))
    square.save(tmp_path / "sq.jpg", exif=exif, quality=95)
    Image.fromarray(PALETTE[scene_ids(40, 40)]).save(tmp_path / "lsq.png")
    with caplog.at_level("WARNING"):
        load_scene(tmp_path / "sq.jpg", tmp_path / "lsq.png")
    assert "EXIF orientation 6" in caplog.text
    # the same photo without the tag, or both tagged alike: no word
    caplog.clear()
    square.save(tmp_path / "plain.jpg", quality=95)
    with caplog.at_level("WARNING"):
        load_scene(tmp_path / "plain.jpg", tmp_path / "lsq.png")
    assert "EXIF" not in caplog.text


def test_max_size_downscales_image_and_labels_together(tmp_path):
    ids = scene_ids(300, 400)
    Image.fromarray(PALETTE[ids]).save(tmp_path / "l.png")
    Image.fromarray((_photo(300, 400) * 255).astype(np.uint8)).save(tmp_path / "i.png")
    image, lab = load_scene(tmp_path / "i.png", tmp_path / "l.png", max_size=100)
    assert image.shape == (75, 100, 3) and lab.size == (75, 100)
    assert lab.num_classes == 3  # nearest sampling keeps exact ids


def test_mismatched_sizes_are_an_error(tmp_path):
    Image.fromarray(PALETTE[scene_ids(60, 80)]).save(tmp_path / "l.png")
    Image.fromarray((_photo(61, 80) * 255).astype(np.uint8)).save(tmp_path / "i.png")
    with pytest.raises(InputError, match="same size"):
        load_scene(tmp_path / "i.png", tmp_path / "l.png")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"this is not an image", "not a readable image"), (None, "no such file")],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_image(path)
    assert str(path) in str(err.value)
    with pytest.raises(InputError, match=message):
        read_label_map(path)


def test_truncated_file(tmp_path):
    Image.fromarray((_photo(200, 200) * 255).astype(np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="damaged or truncated"):
        read_image(tmp_path / "cut.png")


def test_names_up_to_the_file_system_limit_are_written(tmp_path):
    """A temporary file's name adds a dot and random characters to the output's: an output
    name of 251 bytes (ä is 2) must still be writable, one past the limit refused up front."""
    from semia.io.files import check_writable

    photo = _photo(8, 8)
    name = "ä" * 120 + "f" * 7 + ".png"  # 251 bytes of UTF-8
    path = write_image(tmp_path / name, photo)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert np.abs(read_image(path) - photo).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(InputError, match="the name is 260 bytes long; the file system allows"):
        check_writable(tmp_path / ("g" * 256 + ".png"))


def test_write_image_is_atomic_and_roundtrips(tmp_path):
    photo = _photo()
    path = write_image(tmp_path / "sub" / "o.png", photo)
    assert np.abs(read_image(path) - photo).max() <= 0.5 / 255 + 1e-6
    assert [p.name for p in path.parent.iterdir()] == ["o.png"]  # no temp file left behind
    with pytest.raises(InputError, match="suffix"):
        write_image(tmp_path / "o.txt", photo)


def test_write_image_failure_leaves_no_file(tmp_path):
    bad = np.zeros((0, 0, 3), np.uint8)  # PIL cannot save an empty image
    with pytest.raises((ValueError, SystemError)):
        write_image(tmp_path / "o.png", bad)
    assert list(tmp_path.iterdir()) == []


def test_labelmap_helpers():
    lab = LabelMap(ids=np.array([[0, 1], [1, 1]]), palette=PALETTE[:2])
    assert lab.counts().tolist() == [1, 3]
    assert lab.to_rgb().shape == (2, 2, 3)
    assert "75.00 %" in lab.describe()


# --- the shared scenes -----------------------------------------------------------------------


@pytest.mark.skipif(not SHARED.exists(), reason="shared example scenes not present")
@pytest.mark.parametrize(
    ("scene", "classes"),
    [("building", 3), ("face", 10), ("hill", 5), ("lake", 5), ("pantheon", 2), ("tree", 3),
     ("zebra", 2)],
)  # fmt: skip
def test_shared_scenes_palettes_and_targets(scene, classes):
    folder = SHARED / scene
    image_path = next(folder.glob("img.*"))
    label_path = next(folder.glob("label.*"))
    _image, lab = load_scene(image_path, label_path, max_size=256)
    assert lab.num_classes == classes
    assert (lab.counts() > 0).all()
    for cond in sorted((folder / "cond").iterdir()):
        tgt, unknown = match_target(cond, lab, max_size=256)
        assert unknown == [], f"{cond}: {unknown}"
        if cond.stem == "rec":
            assert _agreement(tgt.ids, lab.ids) > 0.995


def test_read_target_reads_at_the_source_scale_by_default(tmp_path):
    ids = scene_ids(60, 80)
    Image.fromarray(antialias(ids)).save(tmp_path / "label.png")
    Image.fromarray(antialias(np.roll(ids, 10, axis=1))).save(tmp_path / "target.png")
    source = read_label_map(tmp_path / "label.png", max_size=40)
    assert source.size == (30, 40) and source.scale == pytest.approx(0.5)
    target = read_target(tmp_path / "target.png", source)
    assert target.size == source.size
    full = read_target(tmp_path / "target.png", read_label_map(tmp_path / "label.png"))
    assert full.size == (60, 80)


def test_a_failed_write_names_the_output_and_keeps_the_old_file(tmp_path):
    from semia.io import atomic_save

    target = tmp_path / "result.png"
    target.write_bytes(b"old")

    def disk_full(tmp: str) -> None:
        Path(tmp).write_bytes(b"partial")
        raise OSError(28, "No space left on device", tmp)

    with pytest.raises(OSError, match="No space left") as info:
        atomic_save(target, disk_full)
    assert info.value.filename == str(target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["result.png"]
