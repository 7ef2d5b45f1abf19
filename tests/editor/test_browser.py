"""End-to-end: the page in Debian's Chromium, driven by Playwright, against the real server.

Needs the `chromium` package (`apt-get install -y chromium`; Playwright's own browser download
is not used). Set SEMIA_DOCS_SCREENSHOT=docs/editor.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from semia.editor.config import EditorConfig
from semia.editor.server import Editor
from semia.io import load_scene, read_target

from .conftest import EXAMPLES, decode_png, serve

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)
SIZE = 128  # the example's longest side: software rendering is slow, keep the canvas small
SKY, MOUNTAIN, WATER = 0, 2, 4  # class ids of the lake example


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    models = str(tmp_path_factory.mktemp("models"))
    config = EditorConfig(max_size=SIZE, gan_iters=4, gan_threads=1, cache_dir=models)
    run = serve(Editor(config))
    yield run
    run.stop()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(server, browser):
    context = browser.new_context(
        viewport={"width": 1400, "height": 820}, accept_downloads=True, bypass_csp=True
    )  # the page forbids eval; Playwright's wait_for_function needs it
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
    wait_for_result(page, 0)
    yield page
    context.close()
    assert not errors, errors


def editor_state(page, name: str):
    return page.evaluate(f"() => window.semiaEditor.state.{name}")


def target(page) -> np.ndarray:
    flat = page.evaluate("() => Array.from(window.semiaEditor.state.target)")
    height, width = editor_state(page, "height"), editor_state(page, "width")
    return np.array(flat, np.int64).reshape(height, width)


def wait_for_result(page, version: int) -> int:
    """Wait until a result newer than `version` is shown and nothing is pending."""
    page.wait_for_function(
        "v => window.semiaEditor.state.resultVersion > v && !window.semiaEditor.state.pending"
        " && !window.semiaEditor.state.inflight",
        arg=version,
        timeout=60_000,
    )
    return editor_state(page, "resultVersion")


def result_pixels(page) -> np.ndarray:
    """The result image as shown, (H, W, 3) uint8 (read back through a canvas)."""
    flat = page.evaluate(
        """() => {
            const img = document.getElementById('result');
            const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d');
            g.drawImage(img, 0, 0);
            return Array.from(g.getImageData(0, 0, c.width, c.height).data);
        }"""
    )
    height, width = editor_state(page, "height"), editor_state(page, "width")
    return np.array(flat, np.uint8).reshape(height, width, 4)[..., :3]


def at(page, x: int, y: int) -> tuple[float, float]:
    """Screen position of the centre of label pixel (x, y)."""
    box = page.locator("#canvas").bounding_box()
    width, height = editor_state(page, "width"), editor_state(page, "height")
    return box["x"] + (x + 0.5) * box["width"] / width, box["y"] + (y + 0.5) * box[
        "height"
    ] / height


def drag(page, start: tuple[int, int], end: tuple[int, int]) -> None:
    page.mouse.move(*at(page, *start))
    page.mouse.down()
    page.mouse.move(*at(page, *end), steps=8)
    page.mouse.up()


def source_labels():
    return load_scene(EXAMPLES / "lake/img.png", EXAMPLES / "lake/label.png", SIZE)


def test_paint_a_stroke_and_see_the_result(page, tmp_path):
    image, labels = source_labels()
    before = result_pixels(page)
    assert np.abs(before.astype(int) - np.round(image * 255)).max() <= 1  # unchanged layout
    page.click(f"#palette button[data-class='{MOUNTAIN}']")
    page.click("[data-tool=brush]")
    version = editor_state(page, "resultVersion")
    drag(page, (30, 14), (90, 14))
    painted = target(page)
    stroke = (slice(12, 17), slice(32, 89))
    assert (painted[stroke] == MOUNTAIN).all()
    assert (painted[40:] == labels.ids[40:]).all()  # nothing else touched
    assert set(np.unique(painted)) <= set(range(labels.num_classes))  # ids only, never blends
    wait_for_result(page, version)
    after = result_pixels(page)
    change = np.abs(after.astype(int) - before)
    assert change[stroke].mean() > 15  # the sky under the stroke became mountain
    assert change[60:].mean() < change[stroke].mean() / 4
    main = page.locator("main").bounding_box()
    clip = {"x": 0, "y": 0, "width": main["width"], "height": main["y"] + main["height"] + 4}
    page.screenshot(path=str(tmp_path / "editor.png"), clip=clip)
    assert (tmp_path / "editor.png").stat().st_size > 10_000
    docs = os.environ.get("SEMIA_DOCS_SCREENSHOT")
    if docs:
        page.screenshot(path=docs, clip=clip)


def test_move_a_region_then_undo_and_redo(page):
    _, labels = source_labels()
    start = target(page)
    ys, xs = np.nonzero(start == WATER)
    x, y = int(np.median(xs)), int(ys[np.abs(xs - np.median(xs)) < 1].min()) + 1
    assert start[y, x] == WATER
    page.click("[data-tool=move]")
    version = editor_state(page, "resultVersion")
    drag(page, (x, y), (x, y - 40))
    moved = target(page)
    assert moved[y - 40, x] == WATER and start[y - 40, x] != WATER
    assert (moved == WATER).sum() >= 0.95 * (start == WATER).sum()  # moved, not lost
    assert (moved[start == WATER] == WATER).mean() < 0.5  # its old place was filled in
    wait_for_result(page, version)
    page.click("#undo")
    np.testing.assert_array_equal(target(page), start)
    page.keyboard.press("Control+Shift+Z")
    np.testing.assert_array_equal(target(page), moved)
    page.keyboard.press("Control+Z")
    np.testing.assert_array_equal(target(page), labels.ids)


def test_rectangle_fill_eraser_and_duplicate(page):
    _, labels = source_labels()
    page.keyboard.press(str(WATER + 1))  # palette shortcut: 1 = class 0
    page.click("[data-tool=rect]")
    drag(page, (10, 5), (40, 20))
    ids = target(page)
    assert (ids[5:21, 10:41] == WATER).all() and (ids[:5] == labels.ids[:5]).all()
    page.keyboard.press("e")
    page.fill("#brush-size", "1")
    page.dispatch_event("#brush-size", "input")
    page.mouse.click(*at(page, 20, 10))
    erased = target(page)
    assert erased[10, 20] == labels.ids[10, 20] and erased[10, 22] == WATER
    page.click(f"#palette button[data-class='{MOUNTAIN}']")
    page.click("[data-tool=fill]")
    page.mouse.click(*at(page, 30, 15))  # the rectangle (minus the erased pixel) becomes mountain
    filled = target(page)
    assert (filled[5:21, 10:41][erased[5:21, 10:41] == WATER] == MOUNTAIN).all()
    page.click("[data-tool=copy]")
    drag(page, (30, 15), (30, 45))  # duplicate the mountain block lower down
    copied = target(page)
    assert (copied[5:21, 10:41] == filled[5:21, 10:41]).all()  # the original stays
    assert (copied[40:46, 12:40] == MOUNTAIN).all()


def test_download_result_target_and_sheet(page, tmp_path):
    page.click(f"#palette button[data-class='{WATER}']")
    page.click("[data-tool=rect]")
    version = editor_state(page, "resultVersion")
    drag(page, (60, 4), (100, 18))
    wanted = target(page)
    wait_for_result(page, version)
    shown = result_pixels(page)
    _, labels = source_labels()
    saved = {}
    for kind in ("result", "target", "sheet"):
        with page.expect_download() as info:
            page.click(f"button.download[data-kind={kind}]")
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        saved[kind] = path
    assert saved["result"].name == "lake_analogy.png"
    np.testing.assert_array_equal(decode_png(saved["result"].read_bytes()), shown)
    np.testing.assert_array_equal(read_target(saved["target"], labels, max_size=SIZE).ids, wanted)
    sheet = decode_png(saved["sheet"].read_bytes())
    assert sheet.shape[1] > 4 * sheet.shape[0] > 0


@pytest.mark.slow  # ~20 s: a training process starts; the API tests cover training by default
def test_train_the_gan_and_switch_methods(page):
    assert page.is_disabled("#method-gan")
    page.click(f"#palette button[data-class='{WATER}']")
    page.click("[data-tool=rect]")
    version = editor_state(page, "resultVersion")
    drag(page, (20, 60), (60, 80))
    version = wait_for_result(page, version)
    analogy = result_pixels(page)
    page.click("#train")
    page.wait_for_function(
        "() => document.getElementById('train-status').dataset.state === 'done'", timeout=120_000
    )
    version = wait_for_result(page, version)  # done: the view switches to the GAN's result
    assert page.is_checked("#method-gan") and page.is_disabled("#train")
    assert page.evaluate("() => document.getElementById('train-progress').value") == 1
    gan = result_pixels(page)
    # another method, another image: G re-draws where the new regions meet (its class band),
    # the analogy stays elsewhere
    changed = np.abs(gan.astype(int) - analogy).max(-1) > 10
    assert changed.mean() > 0.01
    page.check("input[name=method][value=analogy]")
    wait_for_result(page, version)
    np.testing.assert_array_equal(result_pixels(page), analogy)  # and back


def test_open_an_upload_and_see_a_bad_one_refused(page, tmp_path):
    bad = tmp_path / "label.png"
    bad.write_bytes(b"not a png")
    page.set_input_files("#photo-file", str(EXAMPLES / "tree/img.png"))
    page.set_input_files("#label-file", str(bad))
    page.click("#open-button")
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "label upload 'label.png'" in page.text_content("#status")
    assert editor_state(page, "session")["name"] == "lake"  # the open scene stays
    version = editor_state(page, "resultVersion")
    page.set_input_files("#label-file", str(EXAMPLES / "tree/label.png"))
    page.click("#open-button")
    wait_for_result(page, version)
    _, labels = load_scene(EXAMPLES / "tree/img.png", EXAMPLES / "tree/label.png", SIZE)
    assert editor_state(page, "session")["name"] == "img"
    assert (editor_state(page, "height"), editor_state(page, "width")) == labels.size
    assert page.locator("#palette button").count() == labels.num_classes
    np.testing.assert_array_equal(target(page), labels.ids)


def test_scribble_mode_makes_a_label_map(page):
    """A photo without a label map: strokes in two colours, Segment, then edit as usual."""
    page.set_input_files("#photo-file", str(EXAMPLES / "lake/img.png"))
    page.click("#open-button")
    page.wait_for_function("() => document.body.dataset.mode === 'scribble'")
    assert page.is_visible("#segment") and not page.is_visible("#result")
    width, height = editor_state(page, "width"), editor_state(page, "height")
    assert max(width, height) == SIZE
    _, labels = source_labels()
    rows = {SKY: 6, WATER: None}
    ys, xs = np.nonzero(labels.ids == WATER)  # a stroke along the middle row of the lake
    rows[WATER] = int(np.median(ys))
    water_x = xs[ys == rows[WATER]]
    page.click("[data-tool=brush]")
    page.click("#palette button[data-class='0']")
    drag(page, (20, rows[SKY]), (100, rows[SKY]))
    page.click("#palette button[data-class='1']")
    drag(page, (int(water_x.min()) + 3, rows[WATER]), (int(water_x.max()) - 3, rows[WATER]))
    strokes = target(page)
    assert set(np.unique(strokes)) == {0, 1, 255}
    version = editor_state(page, "resultVersion")
    page.click("#segment")
    page.wait_for_function("() => document.body.dataset.mode === 'edit'", timeout=60_000)
    wait_for_result(page, version)
    ids = target(page)
    assert ids.shape == labels.ids.shape and set(np.unique(ids)) == {0, 1}
    assert (ids[:10] == 0).mean() > 0.9  # the sky's stroke class took the sky
    assert ids[rows[WATER], int(np.median(water_x))] == 1
    assert page.locator("#palette button").count() == 2


def test_remove_task_masks_a_region_and_keeps_the_layout(page, tmp_path):
    _, labels = source_labels()
    page.click(f"#palette button[data-class='{WATER}']")
    page.click("[data-tool=rect]")
    version = editor_state(page, "resultVersion")
    drag(page, (60, 4), (100, 18))  # a layout edit first: it must survive the task switches
    layout = target(page)
    version = wait_for_result(page, version)
    page.click("[data-task=remove]")
    version = wait_for_result(page, version)  # an empty mask shows the photo
    assert not page.is_visible("#palette") and page.is_disabled("[data-tool=move]")
    assert (target(page) == 0).all() and "what to remove" in page.text_content("#status")
    photo = result_pixels(page)
    ys, xs = np.nonzero(labels.ids == MOUNTAIN)
    x, y = int(np.median(xs)), int(np.median(ys))
    page.click("[data-tool=fill]")
    page.mouse.click(*at(page, x, y))  # Fill: the whole mountain region under the click
    mask = target(page).astype(bool)
    assert mask[y, x] and mask.sum() > 200 and (labels.ids[mask] == MOUNTAIN).all()
    version = wait_for_result(page, version)
    removed = result_pixels(page).astype(int)
    assert np.abs(removed - photo)[mask].mean() > 10  # the mountain is gone
    far = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0  # 3 px off it
    assert np.abs(removed - photo)[far].max() <= 1
    with page.expect_download() as info:
        page.click("button.download[data-kind=target]")
    assert info.value.suggested_filename == "lake_removed_target.png"
    page.click("#undo")  # undo acts on the mask, not the layout
    assert (target(page) == 0).all()
    page.click("[data-task=layout]")
    np.testing.assert_array_equal(target(page), layout)
    page.click("[data-task=remove]")
    assert (target(page) == 0).all()
    page.click("#redo")
    np.testing.assert_array_equal(target(page).astype(bool), mask)


def test_sketch_task_starts_from_the_photos_lines(page):
    page.click("[data-task=sketch]")
    page.wait_for_function("() => window.semiaEditor.state.task === 'sketch'")
    version = wait_for_result(page, 0)
    lines = target(page)
    assert set(np.unique(lines)) == {0, 1} and 0.01 < lines.mean() < 0.2
    assert page.is_disabled("[data-tool=rect]") and page.is_disabled("[data-tool=fill]")
    assert page.is_disabled("#method-gan")
    before = result_pixels(page)
    page.click("[data-tool=brush]")
    assert editor_state(page, "size") == 2  # thin lines by default in this task
    drag(page, (10, 40), (110, 40))  # a new horizontal line across the photo
    drawn = target(page)
    assert drawn[39:42, 12:108].any(0).all() and (drawn[lines == 1] == 1).all()
    version = wait_for_result(page, version)
    after = result_pixels(page)
    assert np.abs(after.astype(int) - before).mean() > 1
    page.click("[data-tool=eraser]")
    page.fill("#brush-size", "6")
    page.dispatch_event("#brush-size", "input")
    drag(page, (10, 40), (110, 40))
    assert not target(page)[39:42, 14:106].any()
    version = wait_for_result(page, version)
    page.check("#sketch-layout")  # labels + edges
    wait_for_result(page, version)
    assert editor_state(page, "sketchWithLayout") is True
    page.click("#reset")
    np.testing.assert_array_equal(target(page), lines)
