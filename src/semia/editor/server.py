"""The editor's HTTP server: the page, and a JSON/HTTP API that scripts can use too.

Every answer other than an image is JSON; every error is JSON ``{"error": "message"}`` with a
4xx status for bad input (400 unreadable or wrong upload, 404 unknown session, 409 superseded,
413 too large) and 500 for a bug (logged; the server goes on).

Stateless:

    GET  /api/health                      {"ok": true, "version": ...}
    GET  /api/examples                    {"examples": [names], "start": name, "max_size",
                                          "scribble_palette": ["#rrggbb", ...]}
    POST /api/analogy                     multipart form: photo, label, target (files), seed
                                          (optional int) -> image/png, the training-free result
                                          at the target's size (target colours are snapped to
                                          the label map's palette)

Sessions (one per browser tab; the id is a random token, and only its holder reaches the data):

    POST   /api/sessions                  multipart form: photo, label (files) -> session JSON
    POST   /api/sessions/segment          multipart form: photo (file), scribbles (file: W*H
                                          bytes of stroke classes, row-major, 255 = none, classes
                                          index SCRIBBLE_PALETTE), width, height -> session JSON
                                          of the photo labelled by `semia.segment`
    POST   /api/sessions/example          JSON {"name": "lake"} (or {} for the scene the server
                                          was started with) -> session JSON
    GET    /api/sessions/{id}             session JSON
    DELETE /api/sessions/{id}             close it
    GET    /api/sessions/{id}/photo.png   the photo at the editor's size
    GET    /api/sessions/{id}/labels.png  its label map (colours)
    POST   /api/sessions/{id}/result?method=analogy|gan&seed=0
                                          body: the target layout, either H*W bytes of class ids
                                          (application/octet-stream, uint8, row-major) or a colour
                                          PNG (image/png, or any type when the body starts with
                                          PNG's signature; snapped to the palette) -> image/png.
                                          A newer request of the session supersedes an older one
                                          still waiting or running: that one answers 409.
    POST   /api/sessions/{id}/remove?method=analogy|gan&seed=0
                                          body: the removal mask, either H*W bytes (application/
                                          octet-stream, nonzero = remove) or an image (image/png,
                                          white = remove); grown by 2 px per 256 px as `semia
                                          remove` grows it -> image/png, the photo without what
                                          the mask covers (`semia.remove` with the session's
                                          label map; the filled map: download/target?task=remove)
    POST   /api/sessions/{id}/sketch?seed=0
                                          body: the sketch, either H*W bytes (application/octet-
                                          stream, nonzero = line) or an image (dark lines on
                                          light, the photo's aspect ratio); or a multipart form
                                          with file "sketch" (raw if named *.bin, else an image)
                                          and optional file "target" (a layout as for /result,
                                          raw ids if named *.bin) for labels + edges -> image/png,
                                          the training-free result (the GAN answers 400: the
                                          editor trains it on label maps only)
    GET    /api/sessions/{id}/edges.png   the photo's sketch-style edge map (`semia.edges`):
                                          dark lines on white, a start for a sketch
    POST   /api/sessions/{id}/train       start training the GAN (or reuse the cached model)
    GET    /api/sessions/{id}/train       {"state": none|running|done|cancelled|failed, "step",
                                          "total", "elapsed_s", "eta_s", "error"}
    DELETE /api/sessions/{id}/train       cancel training (a later start resumes it)
    GET    /api/sessions/{id}/download/result?task=...&method=...
                                          the last result of a task (layout, remove or sketch;
                                          default: the newest result's) as a PNG attachment
    GET    /api/sessions/{id}/download/target?task=...
                                          what it was made for: the target layout, or the
                                          removal's filled label map (PNG coded like the source
                                          label map: colours, palette or ids), or the sketch
    GET    /api/sessions/{id}/download/sheet?task=...
                                          photo | labels | target | results (or photo | mask |
                                          filled labels | results; photo | edges | sketch | ...)

Session JSON: {"session": id, "name", "width", "height", "kind", "classes": [{"id", "colour":
"#rrggbb", "pixels", "value"}], "labels": base64 of the H*W uint8 class ids, "gan": train status}.

No request names a file on the server: the page's three static files are served from the
package by name, and everything else is made in memory from the session's own data.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from PIL import Image, ImageDraw
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect

from semia.editor.config import EditorConfig
from semia.editor.state import METHODS, TASKS, Result, Session, SessionStore, UnknownSession
from semia.editor.training import Trainer
from semia.editor.uploads import (
    PNG_SIGNATURE,
    Upload,
    encode_png,
    ids_from_bytes,
    ids_to_base64,
    lines_from_bytes,
    mask_from_bytes,
    read_mask_upload,
    read_photo,
    read_scene,
    read_sketch_upload,
    read_target_upload,
)
from semia.errors import check_seed
from semia.io import InputError, LabelMap, find_scenes, load_scene, to_uint8

log = logging.getLogger(__name__)

STATIC_FILES = {  # the page: file name -> media type (nothing else is served from disk)
    "index.html": "text/html; charset=utf-8",
    "editor.js": "text/javascript; charset=utf-8",
    "editor.css": "text/css; charset=utf-8",
}
_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)
SCRIBBLE_PALETTE = (  # stroke colours of scribble mode; they become the label map's colours
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
)  # fmt: skip
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
_MAX_FORM_FILES = 4
_RESULTS_KEPT = 24  # results kept per session (undo / redo answer at once)
_WARM_UP_JOIN_S = 30.0  # stopping: the longest wait for the start-up warm-up synthesis


class Superseded(Exception):
    """A newer result request of the same session came in; this one gives up."""


class BodyTooLarge(Exception):
    """The request body is over the upload limit."""


def is_image(media_type: str, body: bytes) -> bool:
    """Whether a request body is an image file rather than raw bytes: an image/* media type
    (any case), or a PNG sent under another type (its signature)."""
    return media_type.lower().startswith("image/") or body.startswith(PNG_SIGNATURE)


def example_root() -> Path:
    """The packaged example scenes (src/semia/examples/)."""
    return Path(str(resources.files("semia") / "examples"))


class Editor:
    """The server's state: sessions, example scenes, the trainer, and one compute lock (results
    are computed one at a time, so a busy CPU serves the newest request of each session next).

    Args:
        config: the editor's settings (None: the defaults).
        start: the scene the page opens with: (name, image (H, W, 3) float32, LabelMap); None
            for the first packaged example.
        device: torch device for results and training ("cpu", "cuda").
    """

    def __init__(
        self,
        config: EditorConfig | None = None,
        start: tuple[str, np.ndarray, LabelMap] | None = None,
        device: str = "cpu",
    ) -> None:
        config = config or EditorConfig()
        self.config, self.device = config, device
        self.sessions = SessionStore(config.max_sessions, config.session_ttl_s)
        self.trainer = Trainer(
            config.cache_path(), config.training_iters(), config.gan_threads, device
        )
        scenes = find_scenes(example_root())
        self._examples = {name: (image, label) for name, image, label, _ in scenes}
        self._loaded: dict[str, tuple[np.ndarray, LabelMap]] = {}
        self._start = start
        self._compute = threading.Lock()

    def warm_up(self) -> None:
        """One tiny synthesis, so the first real result does not pay for imports and set-up."""
        from semia import analogy

        ids = np.zeros((24, 24), np.int64)
        ids[8:16, 8:16] = 1
        image = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
        try:
            self._locked(
                lambda: analogy(image, ids, ids[::-1].copy(), device=self.device), lambda: True
            )
        except Exception:  # a warm-up only; a real problem shows in the first real request
            log.exception("warm-up synthesis failed")

    @property
    def example_names(self) -> list[str]:
        return sorted(self._examples)

    @property
    def start_name(self) -> str:
        return self._start[0] if self._start is not None else self.example_names[0]

    def open_example(self, name: str | None) -> Session:
        """A session on a packaged example by name, or on the start scene (name None)."""
        if name is None and self._start is not None:
            return self.sessions.open(*self._start)
        name = name or self.example_names[0]
        if name not in self._examples:
            raise InputError(f"no example {name!r}; choose one of {', '.join(self.example_names)}")
        if name not in self._loaded:
            self._loaded[name] = load_scene(*self._examples[name], self.config.max_size)
        return self.sessions.open(name, *self._loaded[name])

    def open_upload(self, photo: Upload, label: Upload) -> Session:
        image, labels = read_scene(photo, label, self.config.max_size, self.config.max_pixels)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(photo.filename or "").stem)[:60]
        return self.sessions.open(name.strip("._") or "photo", image, labels)

    def open_segmented(self, photo: Upload, strokes: bytes, width: int, height: int) -> Session:
        """A session on an uploaded photo labelled from scribbles by `semia.segment`.

        Args:
            strokes: width * height bytes, row-major: the stroke class of each pixel (an index
                into SCRIBBLE_PALETTE), 255 where nothing is drawn; any size with the photo's
                aspect ratio.
        """
        from semia.segment import Scribbles, segment

        if width < 1 or height < 1:
            raise InputError(
                f"scribbles: width and height must be positive (the scribbles' size in px, the "
                f"photo's aspect ratio), got {width}x{height}"
            )
        if len(strokes) != width * height:
            raise InputError(
                f"scribbles: expected {width}x{height} = {width * height} bytes of stroke "
                f"classes (uint8, 255 = none), got {len(strokes)} bytes"
            )
        ids = np.frombuffer(strokes, np.uint8).reshape(height, width).astype(np.int64)
        ids[ids == 255] = -1
        if int(ids.max()) >= len(SCRIBBLE_PALETTE):
            raise InputError(
                f"scribbles: stroke class {int(ids.max())}; use 0..{len(SCRIBBLE_PALETTE) - 1}"
            )
        image = read_photo(photo, self.config.max_size, self.config.max_pixels)
        scribbles = Scribbles(ids, np.array(SCRIBBLE_PALETTE, np.uint8))
        labels = self._locked(lambda: segment(image, scribbles), lambda: True)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(photo.filename or "").stem)[:60]
        return self.sessions.open(name.strip("._") or "photo", image, labels)

    def target_from_body(self, session: Session, body: bytes, media_type: str) -> np.ndarray:
        """(H, W) int64 target ids from a result request's body (raw ids or a colour PNG)."""
        if is_image(media_type, body):
            upload = Upload("target", "target.png", body)
            target = read_target_upload(
                upload, session.labels, self.config.max_size, self.config.max_pixels
            ).ids
            if target.shape != session.labels.ids.shape:
                raise InputError(
                    f"target: {target.shape[1]}x{target.shape[0]} px, but the session's photo is "
                    f"{session.labels.ids.shape[1]}x{session.labels.ids.shape[0]}"
                )
            return target
        return ids_from_bytes(body, session.labels)

    def mask_from_body(self, session: Session, body: bytes, media_type: str) -> np.ndarray:
        """(H, W) bool removal mask from a request body: raw H * W bytes (nonzero = remove) or
        an image (white = remove), grown as `semia remove` grows a mask file."""
        from semia.apps.removal import grow_mask

        size = session.labels.size
        if is_image(media_type, body):
            upload = Upload("mask", "mask.png", body)
            return read_mask_upload(upload, size, self.config.max_pixels)
        return grow_mask(mask_from_bytes(body, size))

    def sketch_from_upload(self, session: Session, upload: Upload) -> np.ndarray:
        """(H, W) float32 sketch (0 on lines, 1 on paper) from an upload: raw H * W bytes
        (nonzero = line) for a file named *.bin, else an image of the photo's aspect ratio."""
        size = session.labels.size
        if upload.filename.endswith(".bin"):
            return lines_from_bytes(upload.data, size)
        return read_sketch_upload(upload, size, self.config.max_pixels)

    def _locked(self, work: Callable[[], Any], still_wanted: Callable[[], bool]) -> Any:
        """Run work() under the compute lock, giving up while waiting once it is unwanted."""
        while not self._compute.acquire(timeout=0.05):
            if not still_wanted():
                raise Superseded
        try:
            if not still_wanted():
                raise Superseded
            return work()
        finally:
            self._compute.release()

    def _produce(
        self,
        session: Session,
        task: str,
        method: str,
        seed: int,
        inputs: dict[str, np.ndarray],
        work: Callable[[Callable[..., None]], np.ndarray],
    ) -> bytes:
        """The PNG of a result, made by work(check) under the compute lock unless cached; the
        session's newest request wins (older ones raise `Superseded`; work calls check() to
        give up early). Recorded as the session's result of (task, method) when still newest.
        """
        check_seed(seed)
        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        h = hashlib.sha256()
        for name in sorted(inputs):
            h.update(name.encode())
            h.update(np.ascontiguousarray(inputs[name]).tobytes())
        digest = h.hexdigest()
        key = (task, method, seed, digest)
        request = session.next_request()
        with session.lock:
            cached = session.cache.get(key)
        if cached is None:

            def check(done: int = 0, total: int = 0) -> None:
                if not session.is_latest(request):
                    raise Superseded

            image = self._locked(lambda: work(check), lambda: session.is_latest(request))
            cached = (to_uint8(image), encode_png(image))
        with session.lock:
            session.cache[key] = cached
            session.cache.move_to_end(key)
            while len(session.cache) > _RESULTS_KEPT:
                session.cache.popitem(last=False)
            if session.is_latest(request):
                session.inputs[task] = inputs
                session.results[(task, method)] = Result(digest, cached[0], seed)
                session.last = (task, method)
        return cached[1]

    def _model(self, session: Session):
        model = self.trainer.model(session.key)
        if model is None:
            raise InputError("no GAN is trained for this photo yet: press Train GAN first")
        return model

    def result(self, session: Session, target: np.ndarray, method: str, seed: int) -> bytes:
        """The PNG of `method`'s result for a target layout (H, W) int64."""
        seed = 0 if method == "gan" else seed  # the GAN is deterministic

        def work(check: Callable[..., None]) -> np.ndarray:
            if method == "gan":
                return self._model(session).generate(target)
            from semia import analogy

            return analogy(
                session.image, session.labels, target, seed=seed, device=self.device, progress=check
            )

        return self._produce(session, "layout", method, seed, {"layout": target}, work)

    def removal(self, session: Session, mask: np.ndarray, method: str, seed: int) -> bytes:
        """The PNG of the photo with what the mask (H, W) bool covers removed (`semia.remove`);
        the mask is used as given (callers grow a painted one, as `grow_mask` does)."""
        from semia.apps.removal import check_mask, remove

        mask = check_mask(mask, session.labels.size)
        seed = 0 if method == "gan" else seed

        def work(check: Callable[..., None]) -> np.ndarray:
            model = self._model(session) if method == "gan" else None
            return remove(
                session.image,
                mask,
                session.labels,
                method=method,
                model=model,
                seed=seed,
                device=self.device,
            )

        return self._produce(session, "remove", method, seed, {"mask": mask}, work)

    def sketch(
        self,
        session: Session,
        sketch: np.ndarray,
        target: np.ndarray | None,
        method: str,
        seed: int,
    ) -> bytes:
        """The PNG of the photo in the layout of a sketch (H, W) float32 (0 on lines, 1 on
        paper), and of a target layout (H, W) int64 too when given (labels + edges)."""
        if method == "gan":
            raise InputError(
                "the editor's GAN is trained on label maps only: use the training-free method "
                "for sketches, or train with `semia train --condition labels+edges`"
            )
        edges = self.photo_edges(session)

        def work(check: Callable[..., None]) -> np.ndarray:
            from semia import analogy

            labels = None if target is None else session.labels
            return analogy(
                session.image,
                labels,
                target,
                sketch=sketch,
                source_sketch=edges,
                seed=seed,
                device=self.device,
                progress=check,
            )

        inputs = {"sketch": sketch}
        if target is not None:
            inputs["layout"] = target
        return self._produce(session, "sketch", method, seed, inputs, work)

    def photo_edges(self, session: Session) -> np.ndarray:
        """The photo's sketch-style edge map (`semia.edges`), made once per session:
        (H, W) float32, 1 on the lines."""
        if session.edges is None:
            from semia.apps.edges import edges

            session.edges = edges(session.image)
        return session.edges

    def stateless_analogy(self, photo: Upload, label: Upload, target: Upload, seed: int) -> bytes:
        check_seed(seed)
        image, labels = read_scene(photo, label, self.config.max_size, self.config.max_pixels)
        tgt = read_target_upload(target, labels, self.config.max_size, self.config.max_pixels)

        def work() -> np.ndarray:
            from semia import analogy

            return analogy(image, labels, tgt, seed=seed, device=self.device)

        return encode_png(self._locked(work, lambda: True))

    def download(
        self, session: Session, kind: str, method: str | None, task: str | None = None
    ) -> tuple[bytes, str]:
        """(PNG bytes, file name) of the last result, target or side-by-side sheet of a task
        (default: the task of the newest result)."""
        if kind not in ("result", "target", "sheet"):
            raise InputError(f"download must be result, target or sheet, got {kind!r}")
        task = task or session.last[0]
        if task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        made = [m for (t, m) in session.results if t == task]
        if not made:
            raise InputError(f"nothing to download yet: no {task} result was made in this session")
        name = f"{session.name}_removed" if task == "remove" else session.name
        name = f"{name}_sketch" if task == "sketch" else name
        if kind == "target":
            return _target_png(session, task), f"{name}_target.png"
        if kind == "sheet":
            return encode_png(_sheet(session, task)), f"{name}_sheet.png"
        method = method or (session.last[1] if session.last[0] == task else made[-1])
        result = session.results.get((task, method))
        if result is None:
            raise InputError(f"no {method} {task} result yet in this session")
        return encode_png(result.image), f"{name}_{method}.png"

    def session_json(self, session: Session) -> dict[str, Any]:
        labels = session.labels
        height, width = labels.size
        counts = labels.counts()
        classes = [
            {
                "id": k,
                "colour": "#{:02x}{:02x}{:02x}".format(*(int(c) for c in labels.palette[k])),
                "pixels": int(counts[k]),
                "value": labels.values[k] if labels.values is not None else None,
                "name": labels.names[k] if labels.names is not None else None,
            }
            for k in range(labels.num_classes)
        ]
        return {
            "session": session.token,
            "name": session.name,
            "width": width,
            "height": height,
            "kind": labels.kind,
            "classes": classes,
            "labels": ids_to_base64(labels.ids),
            "gan": self.trainer.status(session.key),
        }


def _target_png(session: Session, task: str) -> bytes:
    """What a task's result was made for, as a file semia reads back: the target layout, or
    the removal's filled label map (both coded like the source label map: colours, palette
    indices or gray ids), or the sketch (dark lines on white)."""
    if task == "sketch":
        return encode_png(np.repeat(session.inputs["sketch"]["sketch"][..., None], 3, 2))
    ids = session.inputs["layout"]["layout"] if task == "layout" else _filled(session)
    labels = session.labels
    buffer = io.BytesIO()
    if labels.kind == "colour" or labels.values is None:
        Image.fromarray(labels.palette[ids]).save(buffer, format="PNG")
        return buffer.getvalue()
    values = np.asarray(labels.values, dtype=np.int64)[ids]  # (H, W) the file's values
    if values.max() >= 256:
        im = Image.fromarray(values.astype(np.uint16))  # 16-bit gray
    else:
        im = Image.fromarray(values.astype(np.uint8))  # 8-bit gray
        if labels.kind == "palette":
            palette = np.zeros((256, 3), np.uint8)
            palette[np.asarray(labels.values)] = labels.palette
            im.putpalette(palette.ravel().tolist())  # becomes a palette ("P") image
    im.save(buffer, format="PNG")
    return buffer.getvalue()


def _filled(session: Session) -> np.ndarray:
    """The label map of the newest removal, its masked part filled (`fill_labels`)."""
    from semia.apps.removal import fill_labels

    return fill_labels(session.labels.ids, session.inputs["remove"]["mask"])


def _sheet(session: Session, task: str) -> np.ndarray:
    """A side-by-side sheet of a task's inputs and its results for them, with titles:
    photo | label map | target | results; photo | mask | filled labels | results; or
    photo | photo's edges | sketch (| target) | results."""
    palette = session.labels.palette
    photo = to_uint8(session.image)
    inputs = session.inputs[task]
    cells = [("photo", photo)]
    if task == "layout":
        cells += [("label map", palette[session.labels.ids])]
        cells += [("target", palette[inputs["layout"]])]
    elif task == "remove":
        mask = inputs["mask"][..., None]
        shaded = np.where(mask, (0.5 * photo + [127, 0, 0]).astype(np.uint8), photo)
        cells += [("mask", shaded), ("filled labels", palette[_filled(session)])]
    else:
        edges = session.edges  # made for the sketch's result
        cells += [("photo's edges", to_uint8(np.repeat(1.0 - edges[..., None], 3, 2)))]
        cells += [("sketch", to_uint8(np.repeat(inputs["sketch"][..., None], 3, 2)))]
        if "layout" in inputs:
            cells += [("target", palette[inputs["layout"]])]
    latest = session.results.get(session.last) if session.last[0] == task else None
    for method in METHODS:
        result = session.results.get((task, method))
        if result is not None and (latest is None or result.digest == latest.digest):
            cells.append(("training-free" if method == "analogy" else "GAN", result.image))
    height, width = cells[0][1].shape[:2]
    scale = max(1, -(-160 // height))  # small scenes scaled up (nearest) to >= 160 px
    pad, header = 6, 16
    sheet = Image.new(
        "RGB", (len(cells) * (width * scale + pad) + pad, height * scale + header + pad), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for i, (title, cell) in enumerate(cells):
        x = pad + i * (width * scale + pad)
        im = Image.fromarray(cell).resize((width * scale, height * scale), Image.Resampling.NEAREST)
        sheet.paste(im, (x, header))
        draw.text((x, 2), title, fill="black")
    return np.asarray(sheet)


# ----------------------------------------------------------------------------------------------
# The ASGI application


class _BodyLimit:
    """ASGI middleware: refuses request bodies over max_bytes (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await _send_json(send, 413, self._message())
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                scope["semia.too_large"] = self._message()  # the endpoint answers 413
                raise BodyTooLarge(self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"the request is larger than this editor accepts ({self.max_bytes >> 20} MiB)"


async def _send_json(send: Callable, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(editor: Editor, host: str = "127.0.0.1") -> FastAPI:
    """The FastAPI application serving `editor`'s page and API.

    Args:
        editor: the server state.
        host: the address the server binds; requests must name it (or localhost) as their Host,
            which keeps other web sites out through DNS rebinding.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        warm = threading.Thread(target=editor.warm_up, daemon=True, name="semia-warm-up")
        warm.start()
        yield  # stopping: whoever runs the server stops training (editor.trainer.shutdown())
        # a Ctrl-C right after the start: let the warm-up synthesis end (a fraction of a second)
        # first, since a thread still inside torch when the interpreter exits aborts the process
        # ("terminate called without an active exception", exit status -6 instead of 130)
        await run_in_threadpool(warm.join, _WARM_UP_JOIN_S)

    app = FastAPI(
        title="semia edit", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    wildcard = host in ("0.0.0.0", "")
    wildcard = wildcard or ":" in host  # IPv6 literals: the host check cannot parse them
    allowed = ["*"] if wildcard else sorted({*_LOCAL_HOSTS, host, f"[{host}]"})
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(InputError)
    @app.exception_handler(ValueError)
    async def bad_input(request: Request, e: Exception) -> JSONResponse:
        return error(400, str(e))

    @app.exception_handler(UnknownSession)
    async def unknown_session(request: Request, e: Exception) -> JSONResponse:
        return error(404, "no such session (it was closed or expired); reload the page")

    @app.exception_handler(Superseded)
    async def superseded(request: Request, e: Exception) -> JSONResponse:
        return error(409, "superseded by a newer request")

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, e: Exception) -> JSONResponse:
        return error(413, str(e))

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, e: Exception) -> JSONResponse:
        """The client went away before its whole body came: nobody reads the answer."""
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return error(400, "the client disconnected before the request body was complete")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in err['loc'][1:])}: {err['msg']}" for err in e.errors()]
        return error(400, "; ".join(parts) or "invalid request")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """A bug in one request answers 500 JSON and is logged; the server goes on. Requests
        that another web site's page makes (their Origin is not this server) are refused."""
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            return error(403, f"requests from {origin} are not accepted; open the editor itself")
        try:
            response = await call_next(request)
        except Exception as e:
            if "semia.too_large" in request.scope:  # raised while reading the body
                return error(413, request.scope["semia.too_large"])
            log.exception("internal error in %s %s", request.method, request.url.path)
            return error(500, f"internal error: {type(e).__name__}: {e}")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def png(data: bytes, filename: str | None = None) -> Response:
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else {}
        return Response(data, media_type="image/png", headers=headers)

    async def form_uploads(request: Request, names: tuple[str, ...]) -> tuple[list[Upload], Any]:
        try:
            form = await request.form(max_files=_MAX_FORM_FILES, max_fields=8)
        except ClientDisconnect:
            raise
        except Exception as e:  # middleware may wrap BodyTooLarge in an exception group
            if "semia.too_large" in request.scope:
                raise BodyTooLarge(request.scope["semia.too_large"]) from None
            raise InputError(
                f"expected a multipart form with files {', '.join(names)} ({e})"
            ) from None
        uploads = []
        for name in names:
            item = form.get(name)
            if item is None or isinstance(item, str):
                raise InputError(f"missing file field {name!r} in the form")
            data = await item.read(editor.config.max_upload_bytes + 1)
            uploads.append(Upload(name, item.filename or name, data))
        return uploads, form

    async def from_body(request: Request, decode: Callable, session: Session) -> np.ndarray:
        """decode(session, body, media type) of a request's body, in a worker thread."""
        body = await request.body()
        media_type = request.headers.get("content-type", "application/octet-stream")
        return await run_in_threadpool(decode, session, body, media_type)

    def int_field(value: Any, name: str, default: int) -> int:
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be an integer, got {value!r}") from None

    # --- page

    def page_file(name: str) -> Response:
        if name not in STATIC_FILES:
            return error(404, f"no page file {name!r}")
        data = (resources.files("semia.editor") / "static" / name).read_bytes()
        return Response(
            data, media_type=STATIC_FILES[name], headers={"Content-Security-Policy": _CSP}
        )

    @app.get("/")
    async def index() -> Response:
        return page_file("index.html")

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        return page_file(name)

    # --- stateless

    @app.get("/api/health")
    async def health() -> dict:
        from semia import __version__

        return {"ok": True, "version": __version__}

    @app.get("/api/examples")
    async def examples() -> dict:
        return {
            "examples": editor.example_names,
            "start": editor.start_name,
            "max_size": editor.config.max_size,
            "scribble_palette": ["#{:02x}{:02x}{:02x}".format(*c) for c in SCRIBBLE_PALETTE],
        }

    @app.post("/api/analogy")
    async def stateless(request: Request) -> Response:
        (photo, label, target), form = await form_uploads(request, ("photo", "label", "target"))
        seed = int_field(form.get("seed"), "seed", 0)
        return png(await run_in_threadpool(editor.stateless_analogy, photo, label, target, seed))

    # --- sessions

    @app.post("/api/sessions")
    async def open_session(request: Request) -> dict:
        (photo, label), _ = await form_uploads(request, ("photo", "label"))
        session = await run_in_threadpool(editor.open_upload, photo, label)
        return editor.session_json(session)

    @app.post("/api/sessions/segment")
    async def open_segmented(request: Request) -> dict:
        (photo, strokes), form = await form_uploads(request, ("photo", "scribbles"))
        if form.get("width") in (None, "") or form.get("height") in (None, ""):
            raise InputError("scribbles: give the form fields width and height (their size in px)")
        width = int_field(form.get("width"), "width", 0)
        height = int_field(form.get("height"), "height", 0)
        session = await run_in_threadpool(editor.open_segmented, photo, strokes.data, width, height)
        return editor.session_json(session)

    @app.post("/api/sessions/example")
    async def open_example(request: Request) -> dict:
        body = await request.body()
        try:
            name = json.loads(body or b"{}").get("name")
        except (ValueError, AttributeError):
            raise InputError('expected a JSON body {"name": "<example>"} or {}') from None
        if name is not None and not isinstance(name, str):
            raise InputError("name must be a string")
        session = await run_in_threadpool(editor.open_example, name)
        return editor.session_json(session)

    @app.get("/api/sessions/{token}")
    async def get_session(token: str) -> dict:
        return editor.session_json(editor.sessions.get(token))

    @app.delete("/api/sessions/{token}")
    async def close_session(token: str) -> dict:
        editor.sessions.close(token)
        return {"closed": True}

    @app.get("/api/sessions/{token}/photo.png")
    async def photo(token: str) -> Response:
        return png(encode_png(editor.sessions.get(token).image))

    @app.get("/api/sessions/{token}/labels.png")
    async def labels(token: str) -> Response:
        return png(encode_png(editor.sessions.get(token).labels.to_rgb()))

    @app.post("/api/sessions/{token}/result")
    async def result(
        token: str, request: Request, method: str = "analogy", seed: int = 0
    ) -> Response:
        session = editor.sessions.get(token)
        target = await from_body(request, editor.target_from_body, session)
        return png(await run_in_threadpool(editor.result, session, target, method, seed))

    @app.post("/api/sessions/{token}/remove")
    async def remove(
        token: str, request: Request, method: str = "analogy", seed: int = 0
    ) -> Response:
        session = editor.sessions.get(token)
        mask = await from_body(request, editor.mask_from_body, session)
        return png(await run_in_threadpool(editor.removal, session, mask, method, seed))

    @app.post("/api/sessions/{token}/sketch")
    async def sketch(
        token: str, request: Request, method: str = "analogy", seed: int = 0
    ) -> Response:
        session = editor.sessions.get(token)
        media_type = request.headers.get("content-type", "application/octet-stream")
        target = None
        if media_type.lower().startswith("multipart/"):
            (upload,), form = await form_uploads(request, ("sketch",))
            item = form.get("target")
            if item is not None and (isinstance(item, str) or not item.filename):
                raise InputError(
                    "target must be a file upload with a file name (a layout image, or raw ids "
                    "in a file named *.bin), not a text field"
                )
            if item is not None:
                data = await item.read(editor.config.max_upload_bytes + 1)
                kind = "application/octet-stream" if item.filename.endswith(".bin") else "image/"
                target = await run_in_threadpool(editor.target_from_body, session, data, kind)
        else:
            body = await request.body()
            name = "sketch.png" if is_image(media_type, body) else "sketch.bin"
            upload = Upload("sketch", name, body)
        lines = await run_in_threadpool(editor.sketch_from_upload, session, upload)
        return png(await run_in_threadpool(editor.sketch, session, lines, target, method, seed))

    @app.get("/api/sessions/{token}/edges.png")
    async def edges(token: str) -> Response:
        session = editor.sessions.get(token)
        lines = await run_in_threadpool(editor.photo_edges, session)
        return png(encode_png(np.repeat(1.0 - lines[..., None], 3, 2)))

    @app.post("/api/sessions/{token}/train")
    async def train(token: str) -> dict:
        session = editor.sessions.get(token)
        return await run_in_threadpool(
            editor.trainer.start, session.key, session.image, session.labels
        )

    @app.get("/api/sessions/{token}/train")
    async def train_status(token: str) -> dict:
        return editor.trainer.status(editor.sessions.get(token).key)

    @app.delete("/api/sessions/{token}/train")
    async def cancel_training(token: str) -> dict:
        session = editor.sessions.get(token)
        return await run_in_threadpool(editor.trainer.cancel, session.key)

    @app.get("/api/sessions/{token}/download/{kind}")
    async def download(
        token: str, kind: str, method: str | None = None, task: str | None = None
    ) -> Response:
        session = editor.sessions.get(token)
        data, filename = await run_in_threadpool(editor.download, session, kind, method, task)
        return png(data, filename)

    app.add_middleware(_BodyLimit, max_bytes=editor.config.max_upload_bytes)
    return app


def url_for(host: str, port: int) -> str:
    """The address to open in a browser."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"http://{shown}:{port}/"


def bind(host: str, port: int):
    """A listening socket on (host, port); port 0 picks a free one.

    Raises:
        InputError: the address is in use or cannot be bound.
    """
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, reuse_port=False)
    except OSError as e:
        raise InputError(
            f"--host {host} --port {port}: cannot listen there ({e.strerror or e}); pick another "
            "--port (0 = any free one)"
        ) from None
    return sock


def make_server(app: Any, sock, log_level: str = "warning"):
    """A uvicorn server for `app` on an already bound socket; run it with
    `server.run(sockets=[sock])` (Ctrl-C stops it cleanly)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    return uvicorn.Server(config)
