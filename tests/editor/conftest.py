"""The editor's server, started for real on a free port in a background thread."""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the editor extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the editor extra (uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (test extra) is not installed")

from semia.editor.config import EditorConfig  # noqa: E402
from semia.editor.server import Editor, bind, create_app, make_server  # noqa: E402

EXAMPLES = Path(str(resources.files("semia") / "examples"))


@dataclass
class Running:
    """A served editor: its state, base URL and an HTTP client."""

    editor: Editor
    url: str
    client: httpx.Client
    _server: object
    _thread: threading.Thread

    def stop(self) -> None:
        self.client.close()
        self._server.should_exit = True
        self._thread.join(15)
        self.editor.trainer.shutdown()


def serve(editor: Editor) -> Running:
    """Start uvicorn for `editor` on a free port; returns once it accepts requests."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = make_server(create_app(editor), sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the editor server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    return Running(editor, url, httpx.Client(base_url=url, timeout=120), server, thread)


@pytest.fixture(scope="package", autouse=True)
def plain_logging():
    """Earlier tests' `semia.cli.main` calls leave the semia logger writing to their (closed)
    captured stderr; the editor's background threads log, so route it back to the root."""
    logger = logging.getLogger("semia")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:], logger.propagate = [], True
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(scope="package")
def running(tmp_path_factory) -> Running:
    """One server for the API tests: small photos, a 4-iteration GAN, a private model cache."""
    config = EditorConfig(
        max_size=96,
        max_upload_mb=2.0,
        max_pixels=300_000,
        gan_iters=4,
        gan_threads=1,
        cache_dir=str(tmp_path_factory.mktemp("models")),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small images: one thread is faster, and immune to a busy machine
    run = serve(Editor(config))
    yield run
    run.stop()
    torch.set_num_threads(threads)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def session_ids(session: dict) -> np.ndarray:
    """The (H, W) uint8 class ids of a session JSON."""
    raw = np.frombuffer(base64.b64decode(session["labels"]), np.uint8)
    return raw.reshape(session["height"], session["width"]).copy()
