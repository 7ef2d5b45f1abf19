"""The editor's remove and sketch tasks through the API, against the real server."""

from __future__ import annotations

import numpy as np

from semia.apps.removal import fill_labels, grow_mask
from semia.io import load_scene, read_target

from .conftest import EXAMPLES, decode_png, png_bytes, session_ids

RAW = {"content-type": "application/octet-stream"}


def open_example(running, name: str) -> dict:
    response = running.client.post("/api/sessions/example", json={"name": name})
    assert response.status_code == 200, response.text
    return response.json()


def scene(running, name: str):
    """The example's photo (H, W, 3) uint8 and LabelMap at the editor's size."""
    image, labels = load_scene(
        EXAMPLES / name / "img.png", EXAMPLES / name / "label.png", running.editor.config.max_size
    )
    return np.round(image * 255).astype(np.uint8), labels


def post(running, sid: str, task: str, body: bytes, headers=None, **query):
    return running.client.post(
        f"/api/sessions/{sid}/{task}", params=query, content=body, headers=headers or RAW
    )


def sky_box(labels) -> tuple[slice, slice]:
    """A 12x16 box inside the class filling the top of the photo."""
    ids = labels.ids
    sky = int(np.bincount(ids[:8].ravel()).argmax())
    for y in range(2, ids.shape[0] - 14):
        for x in range(2, ids.shape[1] - 18):
            box = (slice(y, y + 12), slice(x, x + 16))
            if (ids[y - 2 : y + 14, x - 2 : x + 18] == sky).all():
                return box
    raise AssertionError("no box of sky in the example")


# --- remove


def pasted_scene(running, tmp_path):
    """The lake photo with a red square pasted into its sky, uploaded with its own labels."""
    image, labels = scene(running, "lake")
    box = sky_box(labels)
    pasted = image.copy()
    pasted[box] = (220, 20, 20)
    form = {
        "photo": ("pasted.png", png_bytes(pasted)),
        "label": ("label.png", png_bytes(labels.to_rgb())),
    }
    response = running.client.post("/api/sessions", files=form)
    assert response.status_code == 200, response.text
    mask = np.zeros(labels.size, np.uint8)
    mask[box] = 1
    return response.json(), image, pasted, labels, mask


def test_remove_takes_a_pasted_object_out(running, tmp_path):
    session, truth, pasted, _, mask = pasted_scene(running, tmp_path)
    response = post(running, session["session"], "remove", mask.tobytes(), seed=3)
    assert response.status_code == 200, response.text
    out = decode_png(response.content).astype(int)
    grown = grow_mask(mask > 0)
    # outside the (grown) mask the photo is untouched
    np.testing.assert_array_equal(out[~grown], pasted[~grown])
    # inside, the red square is gone: the result is far closer to the untouched sky
    err_out = np.abs(out - truth)[grown].mean()
    err_pasted = np.abs(pasted.astype(int) - truth)[grown].mean()
    assert err_out < 0.25 * err_pasted, (err_out, err_pasted)
    assert (out[grown][:, 0] - out[grown][:, 1]).mean() < 30  # no red left


def test_remove_mask_as_an_image_matches_raw_bytes(running, tmp_path):
    session, _, _, _, mask = pasted_scene(running, tmp_path)
    sid = session["session"]
    raw = post(running, sid, "remove", mask.tobytes())
    big = np.kron(mask * 255, np.ones((2, 2), np.uint8))  # twice the size, same aspect
    image = post(running, sid, "remove", png_bytes(big), {"content-type": "image/png"})
    assert raw.status_code == image.status_code == 200, image.text
    np.testing.assert_array_equal(decode_png(raw.content), decode_png(image.content))


def test_remove_downloads_the_filled_label_map_and_a_sheet(running, tmp_path):
    session = open_example(running, "tree")
    sid = session["session"]
    ids = session_ids(session)
    tree = int(ids[ids.shape[0] // 2, ids.shape[1] // 2])  # the class in the middle: the tree
    mask = (ids == tree).astype(np.uint8)
    response = post(running, sid, "remove", mask.tobytes())
    assert response.status_code == 200, response.text
    out = decode_png(response.content)
    got = running.client.get(f"/api/sessions/{sid}/download/result", params={"task": "remove"})
    assert got.headers["content-disposition"] == 'attachment; filename="tree_removed_analogy.png"'
    np.testing.assert_array_equal(decode_png(got.content), out)
    path = tmp_path / "filled.png"
    target = running.client.get(f"/api/sessions/{sid}/download/target", params={"task": "remove"})
    path.write_bytes(target.content)
    _, labels = scene(running, "tree")
    filled = read_target(path, labels, max_size=running.editor.config.max_size).ids
    np.testing.assert_array_equal(filled, fill_labels(labels.ids, grow_mask(mask > 0)))
    assert not (filled == tree).any()  # no tree is left in the filled map
    sheet = running.client.get(f"/api/sessions/{sid}/download/sheet", params={"task": "remove"})
    sheet = decode_png(sheet.content)  # photo | mask | filled labels | result
    cell = sheet.shape[0] - 22
    assert 4 * cell < sheet.shape[1] < 5 * cell


def test_bad_removals_are_400_with_a_message(running):
    session = open_example(running, "lake")
    sid = session["session"]
    h, w = session["height"], session["width"]
    cases = [
        (np.zeros(h * w, np.uint8).tobytes(), "empty"),
        (np.ones(h * w, np.uint8).tobytes(), "covers"),
        (b"\x01" * (h * w - 1), "bytes"),
    ]
    for body, message in cases:
        response = post(running, sid, "remove", body)
        assert response.status_code == 400 and message in response.json()["error"], response.text
    square = png_bytes(np.full((40, 40), 255, np.uint8))  # a square mask for a wide photo
    response = post(running, sid, "remove", square, {"content-type": "image/png"})
    assert response.status_code == 400 and "aspect" in response.json()["error"]
    mask = np.zeros((h, w), np.uint8)
    mask[4:10, 4:10] = 1
    response = post(running, sid, "remove", mask.tobytes(), method="gan")
    assert response.status_code == 400 and "Train GAN" in response.json()["error"]


# --- sketch


def edges_of(running, sid: str) -> np.ndarray:
    response = running.client.get(f"/api/sessions/{sid}/edges.png")
    assert response.status_code == 200
    return decode_png(response.content)[..., 0] < 128  # (H, W) True on lines


def test_edges_are_thin_dark_lines_of_the_photo(running):
    session = open_example(running, "lake")
    lines = edges_of(running, session["session"])
    assert lines.shape == (session["height"], session["width"])
    assert 0.01 < lines.mean() < 0.2


def test_the_result_follows_the_sketch(running):
    session = open_example(running, "lake")
    sid = session["session"]
    image, _ = scene(running, "lake")
    image = image.astype(float)
    lines = edges_of(running, sid)
    results = {}
    for name, sketch in (("own", lines), ("mirrored", lines[:, ::-1])):
        response = post(running, sid, "sketch", sketch.astype(np.uint8).tobytes())
        assert response.status_code == 200, response.text
        results[name] = decode_png(response.content).astype(float)

    def err(a, b):
        return np.abs(a - b).mean()

    mirrored = image[:, ::-1]
    assert err(results["own"], image) < err(results["mirrored"], image)
    assert err(results["mirrored"], mirrored) < err(results["own"], mirrored)


def test_sketch_with_a_layout_and_its_downloads(running, tmp_path):
    session = open_example(running, "lake")
    sid = session["session"]
    lines = edges_of(running, sid)
    ids = session_ids(session)
    target = ids[:, ::-1].copy()  # the layout mirrored, as a target
    form = {
        "sketch": ("sketch.bin", lines[:, ::-1].astype(np.uint8).tobytes()),
        "target": ("target.bin", target.tobytes()),
    }
    both = running.client.post(f"/api/sessions/{sid}/sketch", files=form)
    assert both.status_code == 200, both.text
    sheet = running.client.get(f"/api/sessions/{sid}/download/sheet", params={"task": "sketch"})
    sheet = decode_png(sheet.content)  # photo | edges | sketch | target | result
    scale = -(-160 // session["height"])
    cell = session["width"] * scale + 6
    assert sheet.shape[1] == 5 * cell + 6
    sketch = running.client.get(f"/api/sessions/{sid}/download/target", params={"task": "sketch"})
    np.testing.assert_array_equal(decode_png(sketch.content)[..., 0] == 0, lines[:, ::-1])
    # the same sketch as an image, on paper of twice the size, without the layout: another result
    paper = np.where(np.kron(lines[:, ::-1], np.ones((2, 2), bool)), 0, 255).astype(np.uint8)
    alone = post(running, sid, "sketch", png_bytes(paper), {"content-type": "image/png"})
    assert alone.status_code == 200, alone.text
    assert np.abs(decode_png(alone.content).astype(int) - decode_png(both.content)).mean() > 1


def test_bad_sketches_are_400_with_a_message(running):
    session = open_example(running, "lake")
    sid = session["session"]
    h, w = session["height"], session["width"]
    blank = post(running, sid, "sketch", np.zeros(h * w, np.uint8).tobytes())
    assert blank.status_code == 400 and "blank" in blank.json()["error"]
    square = png_bytes(np.full((40, 40), 255, np.uint8))
    response = post(running, sid, "sketch", square, {"content-type": "image/png"})
    assert response.status_code == 400 and "aspect" in response.json()["error"]
    lines = edges_of(running, sid).astype(np.uint8).tobytes()
    gan = post(running, sid, "sketch", lines, method="gan")
    assert gan.status_code == 400 and "label maps only" in gan.json()["error"]
