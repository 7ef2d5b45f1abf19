"""The API's checks of what clients send: photos too small, body and form types, width and
height fields, a client that goes away mid-body, and upload names in warnings."""

from __future__ import annotations

import logging
import socket
import time

import numpy as np
import pytest

from semia.io import LabelMap

from .conftest import EXAMPLES, decode_png, png_bytes, session_ids

RAW = {"content-type": "application/octet-stream"}
TINY = "photo upload 'tiny.png' is 50x1 px; use at least 8x8"


def open_example(running, name: str = "lake") -> dict:
    response = running.client.post("/api/sessions/example", json={"name": name})
    assert response.status_code == 200, response.text
    return response.json()


def palette_of(session: dict) -> np.ndarray:
    """(K, 3) uint8 colours of a session JSON's classes."""
    return np.array(
        [[int(c["colour"][i : i + 2], 16) for i in (1, 3, 5)] for c in session["classes"]],
        np.uint8,
    )


def tiny_scene() -> tuple[bytes, bytes]:
    """A 50x1 px photo and its label map (two classes), as PNG files."""
    photo = np.full((1, 50, 3), 120, np.uint8)
    label = np.zeros((1, 50, 3), np.uint8)
    label[:, 25:] = (200, 30, 30)
    return png_bytes(photo), png_bytes(label)


# --- photos under 8x8 px: refused when the session (or the stateless scene) is made


@pytest.mark.parametrize("endpoint", ["/api/sessions", "/api/analogy", "/api/sessions/segment"])
def test_a_photo_under_8_px_is_refused_at_the_start(running, endpoint):
    photo, label = tiny_scene()
    files = {"photo": ("tiny.png", photo)}
    data = {}
    if endpoint == "/api/sessions/segment":
        files["scribbles"] = ("s.bin", bytes([0] * 25 + [1] * 25))
        data = {"width": "50", "height": "1"}
    else:
        files["label"] = ("label.png", label)
    if endpoint == "/api/analogy":
        files["target"] = ("target.png", label)
    response = running.client.post(endpoint, files=files, data=data)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == TINY


def test_a_failed_training_reports_an_input_error_without_its_class_name(tmp_path):
    """Input errors of the training process reach the page as their message alone."""
    from semia.editor.training import Trainer

    trainer = Trainer(tmp_path, iters=4, threads=1)
    ids = np.zeros((1, 50), np.int64)
    ids[:, 25:] = 1
    labels = LabelMap(ids, np.array([[0, 0, 0], [200, 30, 30]], np.uint8))
    image = np.full((1, 50, 3), 0.5, np.float32)
    try:
        trainer.start("tiny", image, labels)
        deadline = time.monotonic() + 120
        while trainer.status("tiny")["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        info = trainer.status("tiny")
    finally:
        trainer.shutdown()
    assert info["state"] == "failed"
    assert info["error"] == "image is 50x1 px; use at least 8x8"


# --- a client going away mid-body


@pytest.mark.parametrize("body", ["raw", "form"])
def test_a_client_disconnecting_mid_body_is_no_internal_error(running, caplog, body):
    """A body cut short (5 of 100 bytes), raw or a multipart form, is logged as a disconnect."""
    sid = open_example(running)["session"]
    path = f"/api/sessions/{sid}/result" if body == "raw" else "/api/sessions"
    kind = "application/octet-stream" if body == "raw" else "multipart/form-data; boundary=x"
    host, port = running.url.removeprefix("http://").split(":")
    with caplog.at_level(logging.INFO, logger="semia.editor.server"):
        with socket.create_connection((host, int(port))) as sock:
            head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {kind}\r\n"
            sock.sendall(head.encode() + b"Content-Length: 100\r\n\r\n--x\r\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            records = [r for r in caplog.records if r.name == "semia.editor.server"]
            if any(path in r.getMessage() for r in records):
                break
            time.sleep(0.05)
    messages = [r.getMessage() for r in records]
    assert f"client disconnected during POST {path}" in messages
    assert not any("internal error" in m for m in messages)
    assert not any(r.exc_info for r in records)
    assert running.client.get("/api/health").json()["ok"] is True


# --- warnings name the upload, never its temporary path


def test_warnings_while_reading_an_upload_name_it(running, caplog):
    session = open_example(running)
    target = palette_of(session)[session_ids(session)]
    target[10:20, 10:20] = (1, 2, 3)  # a colour the label map lacks: snapped, with a warning
    with caplog.at_level(logging.WARNING, logger="semia"):
        response = running.client.post(
            f"/api/sessions/{session['session']}/result",
            content=png_bytes(target),
            headers={"content-type": "image/png"},
        )
    assert response.status_code == 200, response.text
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("semia.io")]
    unknown = [m for m in messages if "unknown" in m]
    assert unknown and unknown[0].startswith("target map target upload 'target.png': unknown")
    assert not any("semia-edit-" in m for m in messages)


# --- body and form types


@pytest.mark.parametrize("media_type", ["Image/PNG", "application/octet-stream"])
def test_a_png_target_is_read_as_one_whatever_its_type_says(running, media_type):
    session = open_example(running)
    sid = session["session"]
    ids = session_ids(session)
    ids[5:25, 10:40] = 1
    raw = running.client.post(f"/api/sessions/{sid}/result", content=ids.tobytes(), headers=RAW)
    colours = png_bytes(palette_of(session)[ids])
    png = running.client.post(
        f"/api/sessions/{sid}/result", content=colours, headers={"content-type": media_type}
    )
    assert raw.status_code == png.status_code == 200, png.text
    np.testing.assert_array_equal(decode_png(png.content), decode_png(raw.content))


def test_a_png_mask_is_read_as_one_whatever_its_type_says(running):
    session = open_example(running)
    sid = session["session"]
    mask = np.zeros((session["height"], session["width"]), np.uint8)
    mask[4:14, 4:20] = 1
    raw = running.client.post(f"/api/sessions/{sid}/remove", content=mask.tobytes(), headers=RAW)
    for media_type in ("IMAGE/png", "application/octet-stream"):
        png = running.client.post(
            f"/api/sessions/{sid}/remove",
            content=png_bytes(mask * 255),
            headers={"content-type": media_type},
        )
        assert raw.status_code == png.status_code == 200, png.text
        np.testing.assert_array_equal(decode_png(png.content), decode_png(raw.content))


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (None, "scribbles: give the form fields width and height (their size in px)"),
        ((-96, -64), "scribbles: width and height must be positive"),
        ((0, 64), "got 0x64"),
    ],
)
def test_scribbles_need_a_positive_width_and_height(running, size, message):
    form = {
        "photo": ("lake.png", (EXAMPLES / "lake/img.png").read_bytes()),
        "scribbles": ("s.bin", bytes(6144)),
    }
    data = {} if size is None else {"width": str(size[0]), "height": str(size[1])}
    response = running.client.post("/api/sessions/segment", files=form, data=data)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert "bytes" not in response.json()["error"]


def test_a_bad_download_kind_is_named_before_anything_else(running):
    sid = open_example(running)["session"]  # no result yet
    response = running.client.get(f"/api/sessions/{sid}/download/bogus")
    assert response.status_code == 400
    assert response.json()["error"] == "download must be result, target or sheet, got 'bogus'"


def test_a_sketch_target_must_be_a_file_upload(running):
    session = open_example(running)
    sid = session["session"]
    ids = session_ids(session)
    lines = np.zeros_like(ids)
    lines[20:22, :] = 1
    as_text = running.client.post(
        f"/api/sessions/{sid}/sketch",
        files={"sketch": ("sketch.bin", lines.tobytes())},
        data={"target": "1234"},
    )
    nameless = (  # a file part with filename="", as a browser sends an empty file input
        b'--x\r\nContent-Disposition: form-data; name="sketch"; filename="sketch.bin"\r\n\r\n'
        + lines.tobytes()
        + b'\r\n--x\r\nContent-Disposition: form-data; name="target"; filename=""\r\n\r\n'
        + ids.tobytes()
        + b"\r\n--x--\r\n"
    )
    unnamed = running.client.post(
        f"/api/sessions/{sid}/sketch",
        content=nameless,
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    for response in (as_text, unnamed):
        assert response.status_code == 400, response.text
        assert response.json()["error"].startswith("target must be a file upload")
