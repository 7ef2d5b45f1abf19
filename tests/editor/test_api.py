"""The editor's JSON/HTTP API against the real server (uvicorn on a free port)."""

from __future__ import annotations

import io
import logging
import threading
import time

import numpy as np
import pytest
from PIL import Image

from semia.io import load_scene, read_target

from .conftest import EXAMPLES, decode_png, png_bytes, session_ids

RAW = {"content-type": "application/octet-stream"}


def open_example(running, name: str | None = None) -> dict:
    response = running.client.post("/api/sessions/example", json={"name": name} if name else {})
    assert response.status_code == 200, response.text
    return response.json()


def result(running, session: dict, target: np.ndarray, **query) -> np.ndarray:
    response = running.client.post(
        f"/api/sessions/{session['session']}/result",
        params=query,
        content=np.ascontiguousarray(target, np.uint8).tobytes(),
        headers=RAW,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return decode_png(response.content)


def photo(running, session: dict) -> np.ndarray:
    return decode_png(running.client.get(f"/api/sessions/{session['session']}/photo.png").content)


def files(scene: str, target: str = "1.png") -> dict:
    folder = EXAMPLES / scene
    return {
        "photo": ("img.png", (folder / "img.png").read_bytes()),
        "label": ("label.png", (folder / "label.png").read_bytes()),
        "target": ("target.png", (folder / "cond" / target).read_bytes()),
    }


# --- results


def test_unchanged_layout_gives_the_photo_back(running):
    session = open_example(running, "lake")
    ids = session_ids(session)
    assert max(ids.shape) == running.editor.config.max_size
    out = result(running, session, ids)
    assert out.shape == (session["height"], session["width"], 3)
    assert_same_image(out, photo(running, session))


def assert_same_image(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to the rounding of float results to 8 bits (a value at x.5 may go either way)."""
    diff = np.abs(a.astype(int) - b)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def test_painted_region_changes_and_the_rest_stays(running):
    session = open_example(running, "lake")
    ids = session_ids(session)
    source = photo(running, session).astype(np.float32)
    classes = np.bincount(ids.ravel(), minlength=len(session["classes"]))
    top = ids[: ids.shape[0] // 3]
    sky = int(np.bincount(top.ravel()).argmax())  # the class filling the top third
    other = int(np.argsort(classes)[::-1][1] if classes.argmax() == sky else classes.argmax())
    target = ids.copy()
    box = (slice(4, 24), slice(20, 60))
    target[box] = other
    assert (ids[box] != other).mean() > 0.8
    out = result(running, session, target).astype(np.float32)
    changed = np.abs(out - source)[box].mean()
    far = np.abs(out - source)[ids.shape[0] // 2 :].mean()  # bottom half: far from the edit
    assert changed > 20.0  # the painted box took another class's appearance
    assert far < changed / 4


def test_seeds_give_variants_and_repeat(running):
    session = open_example(running, "tree")
    target = session_ids(session)
    target[10:40, 5:30] = target[60, 48]  # grow some class into a box
    a = result(running, session, target, seed=0)
    b = result(running, session, target, seed=1)
    again = result(running, session, target, seed=0)
    np.testing.assert_array_equal(a, again)
    assert np.abs(a.astype(int) - b).mean() > 0.5


def test_a_seed_outside_0_to_2_32_minus_1_is_a_400(running):
    session = open_example(running, "tree")
    for seed in (-1, 2**32):
        response = running.client.post(
            f"/api/sessions/{session['session']}/result",
            params={"seed": seed},
            content=np.ascontiguousarray(session_ids(session), np.uint8).tobytes(),
            headers=RAW,
        )
        assert response.status_code == 400
        message = response.json()["error"]
        assert f"seed must be a whole number in 0..4294967295, got {seed}" in message


def test_stateless_analogy_matches_the_library(running):
    response = running.client.post("/api/analogy", files=files("lake"), data={"seed": "3"})
    assert response.status_code == 200, response.text
    out = decode_png(response.content)
    from semia import analogy

    size = running.editor.config.max_size
    image, labels = load_scene(EXAMPLES / "lake/img.png", EXAMPLES / "lake/label.png", size)
    target = read_target(EXAMPLES / "lake/cond/1.png", labels, "nearest", size)
    expected = np.clip(analogy(image, labels, target, seed=3) * 255 + 0.5, 0, 255).astype(np.uint8)
    assert out.shape == expected.shape == (*target.ids.shape, 3)
    assert np.abs(out.astype(int) - expected).mean() < 0.5


def test_colour_png_target_is_snapped(running):
    """A target sent as a colour PNG with blended (anti-aliased) edge pixels is snapped to the
    palette: same result as the raw ids."""
    session = open_example(running, "lake")
    ids = session_ids(session)
    target = ids.copy()
    target[30:50, 30:70] = 4
    palette = np.array(
        [[int(c["colour"][i : i + 2], 16) for i in (1, 3, 5)] for c in session["classes"]]
    )
    colours = palette[target].astype(np.float32)
    blurred = colours.copy()
    blurred[1:-1, 1:-1] = (
        colours[:-2, 1:-1]
        + colours[2:, 1:-1]
        + colours[1:-1, :-2]
        + colours[1:-1, 2:]
        + 4 * colours[1:-1, 1:-1]
    ) / 8  # soft edges, as a browser canvas would draw them
    response = running.client.post(
        f"/api/sessions/{session['session']}/result",
        content=png_bytes(blurred.round().astype(np.uint8)),
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    snapped = running.client.get(f"/api/sessions/{session['session']}/download/target")
    got = decode_png(snapped.content)
    colours_used = {tuple(c) for c in got.reshape(-1, 3)}
    assert colours_used <= {tuple(c) for c in palette}
    assert (got == palette[target]).all(axis=2).mean() > 0.97


# --- downloads


def test_downloads(running, tmp_path):
    session = open_example(running, "lake")
    sid = session["session"]
    assert running.client.get(f"/api/sessions/{sid}/download/result").status_code == 400
    ids = session_ids(session)
    target = ids.copy()
    target[10:30, 10:50] = 1
    out = result(running, session, target)
    response = running.client.get(f"/api/sessions/{sid}/download/result")
    assert response.headers["content-disposition"] == 'attachment; filename="lake_analogy.png"'
    np.testing.assert_array_equal(decode_png(response.content), out)
    # the target reads back, against the source label map, as exactly the ids sent
    path = tmp_path / "target.png"
    path.write_bytes(running.client.get(f"/api/sessions/{sid}/download/target").content)
    size = running.editor.config.max_size
    _, labels = load_scene(EXAMPLES / "lake/img.png", EXAMPLES / "lake/label.png", size)
    np.testing.assert_array_equal(read_target(path, labels, max_size=size).ids, target)
    sheet = decode_png(running.client.get(f"/api/sessions/{sid}/download/sheet").content)
    assert sheet.shape[0] >= 160 and sheet.shape[1] > 4 * sheet.shape[0]
    bad = running.client.get(f"/api/sessions/{sid}/download/passwd")
    assert bad.status_code == 400 and "result, target or sheet" in bad.json()["error"]


def test_upload_names_are_safe_in_download_names(running):
    folder = EXAMPLES / "tree"
    form = {
        "photo": ('../we"ird näme;.png', (folder / "img.png").read_bytes()),
        "label": ("label.png", (folder / "label.png").read_bytes()),
    }
    session = running.client.post("/api/sessions", files=form).json()
    name = session["name"]  # the client may escape the quote (%22): either way, plain ASCII
    assert name.startswith("we_") and name.endswith("ird_n_me")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")
    result(running, session, session_ids(session))
    response = running.client.get(f"/api/sessions/{session['session']}/download/result")
    assert response.headers["content-disposition"] == f'attachment; filename="{name}_analogy.png"'


@pytest.mark.parametrize("kind", ["ids", "palette", "ids16"])
def test_id_and_palette_maps_give_targets_coded_the_same_way(running, kind):
    """A grayscale id map (8 or 16 bit) or a palette PNG gives its target back coded the same
    way, with the file's own values."""
    low, high = (7, 12) if kind != "ids16" else (300, 1200)
    values = np.full((40, 60), low, np.uint16 if kind == "ids16" else np.uint8)
    values[20:, :] = high
    label = Image.fromarray(values)
    if kind == "palette":
        palette = np.zeros((256, 3), np.uint8)
        palette[low], palette[high] = (10, 200, 10), (200, 10, 10)
        label.putpalette(palette.ravel().tolist())
    buffer = io.BytesIO()
    label.save(buffer, format="PNG")
    image = np.zeros((40, 60, 3), np.uint8)
    image[20:] = 200
    response = running.client.post(
        "/api/sessions",
        files={"photo": ("p.png", png_bytes(image)), "label": ("l.png", buffer.getvalue())},
    )
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["kind"] == ("palette" if kind == "palette" else "ids")
    assert [c["value"] for c in session["classes"]] == [low, high]
    target = session_ids(session)
    target[:10, :10] = 1
    result(running, session, target)
    data = running.client.get(f"/api/sessions/{session['session']}/download/target").content
    got = Image.open(io.BytesIO(data))
    assert got.mode == {"ids": "L", "palette": "P", "ids16": "I;16"}[kind]
    np.testing.assert_array_equal(np.asarray(got), np.where(target == 1, high, low))


# --- bad input


@pytest.mark.parametrize(
    ("photo_file", "label_file", "status", "message"),
    [
        (("a.png", b"not an image"), "lake", 400, "photo upload 'a.png': not a readable image"),
        (("a.png", b""), "lake", 400, "photo upload 'a.png': the file is empty"),
        ("tree", "lake", 400, "they must have the same size"),
        ("big", "big", 400, "more than this editor accepts"),
        ("lake", ("l.png", b"\x89PNG\r\n\x1a\n broken"), 400, "label upload 'l.png'"),
        ("lake", None, 400, "missing file field 'label'"),
        (("junk.bin", bytes(3 << 20)), "lake", 413, "larger than this editor accepts"),
    ],
)
def test_bad_uploads_are_4xx_with_a_message(running, photo_file, label_file, status, message):
    def pick(spec, kind):
        if spec == "big":
            return (f"{kind}.png", png_bytes(np.zeros((600, 600, 3), np.uint8)))
        if isinstance(spec, str):
            return (
                f"{kind}.png",
                (EXAMPLES / spec / f"{'img' if kind == 'photo' else 'label'}.png").read_bytes(),
            )
        return spec

    form = {"photo": pick(photo_file, "photo")}
    if label_file is not None:
        form["label"] = pick(label_file, "label")
    response = running.client.post("/api/sessions", files=form)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert "/tmp" not in response.json()["error"]  # never the server's temporary path


def test_bad_targets(running):
    session = open_example(running, "lake")
    sid = session["session"]
    ids = session_ids(session)
    short = running.client.post(f"/api/sessions/{sid}/result", content=b"\x00" * 10, headers=RAW)
    assert short.status_code == 400 and "bytes of class ids" in short.json()["error"]
    wrong = ids.copy()
    wrong[0, 0] = 9
    high = running.client.post(f"/api/sessions/{sid}/result", content=wrong.tobytes(), headers=RAW)
    assert high.status_code == 400 and "class id 9" in high.json()["error"]
    method = running.client.post(
        f"/api/sessions/{sid}/result",
        params={"method": "magic"},
        content=ids.tobytes(),
        headers=RAW,
    )
    assert method.status_code == 400 and "analogy, gan" in method.json()["error"]
    seed = running.client.post(
        f"/api/sessions/{sid}/result", params={"seed": "x"}, content=ids.tobytes(), headers=RAW
    )
    assert seed.status_code == 400 and "seed" in seed.json()["error"]
    example = running.client.post("/api/sessions/example", json={"name": "../../etc"})
    assert example.status_code == 400 and "no example" in example.json()["error"]


# --- security and robustness


def test_sessions_are_isolated(running):
    a, b = open_example(running, "lake"), open_example(running, "tree")
    assert a["session"] != b["session"] and min(len(a["session"]), len(b["session"])) >= 20
    # concurrent requests of both sessions each get their own photo back
    outs: dict[str, np.ndarray] = {}

    def ask(session):
        outs[session["name"]] = result(running, session, session_ids(session))

    threads = [threading.Thread(target=ask, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_same_image(outs["lake"], photo(running, a))
    assert_same_image(outs["tree"], photo(running, b))
    # one session's target does not fit the other's photo, and unknown tokens see nothing
    wrong = running.client.post(
        f"/api/sessions/{b['session']}/result", content=session_ids(a).tobytes(), headers=RAW
    )
    assert wrong.status_code == 400
    guess = a["session"][:-1] + ("A" if a["session"][-1] != "A" else "B")
    assert running.client.get(f"/api/sessions/{guess}/photo.png").status_code == 404
    assert running.client.delete(f"/api/sessions/{a['session']}").status_code == 200
    assert running.client.get(f"/api/sessions/{a['session']}").status_code == 404
    assert running.client.get(f"/api/sessions/{b['session']}").status_code == 200


def test_no_file_outside_the_page_is_served(running):
    assert running.client.get("/").status_code == 200
    assert "semiaEditor" in running.client.get("/static/editor.js").text
    for path in (
        "/static/server.py",
        "/static/..%2Fserver.py",
        "/static/%2e%2e/state.py",
        "/etc/passwd",
    ):
        response = running.client.get(path)
        assert response.status_code == 404, path
    assert running.client.get("/", headers={"host": "attacker.example"}).status_code == 400
    other_site = running.client.post(
        "/api/sessions/example", json={}, headers={"origin": "https://attacker.example"}
    )
    assert other_site.status_code == 403
    same_site = running.client.post(
        "/api/sessions/example", json={}, headers={"origin": running.url}
    )
    assert same_site.status_code == 200


def test_streamed_upload_over_the_limit_is_refused(running):
    """A body without Content-Length (chunked) is counted as it arrives."""

    def chunks():
        yield b'--x\r\nContent-Disposition: form-data; name="photo"; filename="a.png"\r\n\r\n'
        for _ in range(40):
            yield bytes(100_000)

    response = running.client.post(
        "/api/analogy",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 413
    assert "larger than this editor accepts" in response.json()["error"]
    session = running.client.post("/api/sessions/example", json={}).json()["session"]
    response = running.client.post(f"/api/sessions/{session}/result", content=chunks())
    assert response.status_code == 413
    assert running.client.get("/api/health").status_code == 200


def test_a_crashing_request_does_not_stop_the_server(running, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(running.editor, "stateless_analogy", broken)
    with caplog.at_level(logging.ERROR, logger="semia.editor.server"):
        response = running.client.post("/api/analogy", files=files("lake"))
    assert response.status_code == 500
    assert response.json()["error"] == "internal error: RuntimeError: simulated bug"
    assert any("internal error in POST /api/analogy" in r.message for r in caplog.records)
    monkeypatch.undo()
    assert running.client.get("/api/health").json()["ok"] is True
    assert running.client.post("/api/analogy", files=files("lake")).status_code == 200


def test_a_newer_request_supersedes_a_waiting_one(running):
    session = open_example(running, "lake")
    live = running.editor.sessions.get(session["session"])
    ids = session_ids(session)
    target = ids.copy()
    target[5:20, 5:40] = 3
    answers: dict[str, int] = {}

    def ask(name, ids):
        response = running.client.post(
            f"/api/sessions/{session['session']}/result", content=ids.tobytes(), headers=RAW
        )
        answers[name] = response.status_code

    running.editor._compute.acquire()  # the CPU is busy: both requests must wait
    try:
        first = live.latest
        old = threading.Thread(target=ask, args=("old", target))
        old.start()
        while live.latest == first:
            time.sleep(0.01)
        new = threading.Thread(target=ask, args=("new", ids))
        new.start()
        while live.latest == first + 1:
            time.sleep(0.01)
    finally:
        running.editor._compute.release()
    old.join()
    new.join()
    assert answers == {"old": 409, "new": 200}


# --- the GAN


def wait_for(running, sid: str, states: tuple[str, ...], timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = running.client.get(f"/api/sessions/{sid}/train").json()
        if info["state"] in states or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def test_train_gan_then_generate_and_reuse_the_cache(running):
    session = open_example(running, "tree")
    sid = session["session"]
    assert session["gan"]["state"] == "none"
    ids = session_ids(session)
    refused = running.client.post(
        f"/api/sessions/{sid}/result", params={"method": "gan"}, content=ids.tobytes(), headers=RAW
    )
    assert refused.status_code == 400 and "Train GAN" in refused.json()["error"]
    started = running.client.post(f"/api/sessions/{sid}/train").json()
    assert started["state"] in ("running", "done")
    info = wait_for(running, sid, ("done", "failed"))
    assert info["state"] == "done", info
    assert info["step"] == info["total"] == 4
    out = result(running, session, ids, method="gan")
    assert out.shape == (*ids.shape, 3)
    assert np.abs(out.astype(int) - photo(running, session)).mean() < 128  # an image, not noise
    # a later session on the same photo finds the model in the cache: no training
    again = open_example(running, "tree")
    assert again["gan"]["state"] == "done"
    from semia.editor.training import Trainer

    fresh = Trainer(running.editor.trainer.cache_dir, iters=4)
    assert fresh.is_trained(running.editor.sessions.get(sid).key)


def start_and_cancel(running, trainer) -> tuple[object, dict]:
    """Start a long training, wait for two iterations, cancel it; returns (session, status)."""
    session = running.editor.sessions.get(open_example(running, "lake")["session"])
    trainer.start(session.key, session.image, session.labels)
    deadline = time.monotonic() + 120
    while trainer.status(session.key)["step"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    running_info = trainer.status(session.key)
    assert running_info["state"] == "running" and running_info["eta_s"] is not None
    info = trainer.cancel(session.key)
    deadline = time.monotonic() + 60  # on a busy machine the process may take a while to notice
    while info["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        info = trainer.status(session.key)
    assert info["state"] == "cancelled", info
    assert 2 <= info["step"] < 100_000
    job = trainer._jobs[session.key]
    deadline = time.monotonic() + 60  # it saves a checkpoint first: slow on a busy machine
    while job.process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not job.process.is_alive()
    assert not trainer.is_trained(session.key)
    return session, info


def test_training_can_be_cancelled(running, tmp_path):
    from semia.editor.training import Trainer

    start_and_cancel(running, Trainer(tmp_path, iters=100_000, threads=1))


def test_shutdown_waits_for_the_outcome(running, tmp_path):
    """shutdown() right after a start: the process sees the cancel as it starts, and by the
    time shutdown returns its watcher has recorded the outcome and ended (none left running
    while the interpreter exits)."""
    from semia.editor.training import Trainer

    trainer = Trainer(tmp_path, iters=100_000, threads=1)
    session = running.editor.sessions.get(open_example(running, "lake")["session"])
    assert trainer.start(session.key, session.image, session.labels)["state"] == "running"
    job = trainer._jobs[session.key]
    trainer.shutdown(timeout=60)
    assert not job.process.is_alive() and not job.watcher.is_alive()
    assert trainer.status(session.key)["state"] == "cancelled"
    assert job.process.exitcode == 0  # it stopped by itself, not terminated


@pytest.mark.slow  # two training processes start: ~20 s
def test_cancelled_training_resumes(running, tmp_path):
    from semia.editor.training import Trainer

    trainer = Trainer(tmp_path, iters=100_000, threads=1)
    session, info = start_and_cancel(running, trainer)
    assert trainer.start(session.key, session.image, session.labels)["state"] == "running"
    resumed = trainer._jobs[session.key]
    deadline = time.monotonic() + 120
    while resumed.first is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert resumed.first is not None and resumed.first[1] > info["step"]  # went on from there
    trainer.shutdown()
    assert not resumed.process.is_alive() and trainer.status(session.key)["state"] == "cancelled"


# --- scribble mode (semia.segment)


def test_scribbles_make_the_label_map(running):
    from semia.segment import demo_scribbles

    size = running.editor.config.max_size
    _, labels = load_scene(EXAMPLES / "lake/img.png", EXAMPLES / "lake/label.png", size)
    strokes = demo_scribbles(labels).ids
    raw = np.where(strokes < 0, 255, strokes).astype(np.uint8)
    height, width = raw.shape
    form = {
        "photo": ("lake.png", (EXAMPLES / "lake/img.png").read_bytes()),
        "scribbles": ("s.bin", raw.tobytes()),
    }
    response = running.client.post(
        "/api/sessions/segment", files=form, data={"width": width, "height": height}
    )
    assert response.status_code == 200, response.text
    session = response.json()
    from semia.editor.server import SCRIBBLE_PALETTE

    palette = ["#{:02x}{:02x}{:02x}".format(*c) for c in SCRIBBLE_PALETTE]
    assert [c["colour"] for c in session["classes"]] == palette[: labels.num_classes]
    ids = session_ids(session)
    assert ids.shape == labels.ids.shape
    assert (ids == labels.ids).mean() > 0.8  # the strokes' classes spread over their regions
    out = result(running, session, ids)  # and it is an ordinary session from here on
    assert_same_image(out, photo(running, session))
    short = running.client.post(
        "/api/sessions/segment",
        files={**form, "scribbles": ("s.bin", raw.tobytes()[:-1])},
        data={"width": width, "height": height},
    )
    assert short.status_code == 400 and "bytes of stroke classes" in short.json()["error"]
    empty = running.client.post(
        "/api/sessions/segment",
        files={**form, "scribbles": ("s.bin", bytes([255]) * raw.size)},
        data={"width": width, "height": height},
    )
    assert empty.status_code == 400 and "stroke" in empty.json()["error"]
