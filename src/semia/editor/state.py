"""The per-browser sessions of the editor: one photo, its label map and the last results.

Every session is reached only through its random token (`secrets.token_urlsafe`), so one browser
never sees another's images; old sessions are dropped when there are too many or they idle too
long.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from semia.io import LabelMap, to_uint8

METHODS = ("analogy", "gan")  # how a result is made: training-free patch synthesis or the GAN
TASKS = ("layout", "remove", "sketch")  # what for: a new layout, an object removed, a sketch


def photo_key(image: np.ndarray, labels: LabelMap) -> str:
    """Content hash of a photo and its label map as the editor uses them (hex, 16 chars)."""
    h = hashlib.sha256()
    for array in (to_uint8(image), labels.ids.astype(np.uint8), labels.palette):
        h.update(str(array.shape).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


@dataclass
class Result:
    """The last result of one task and method: a digest of its inputs and the image."""

    digest: str
    image: np.ndarray  # (H, W, 3) uint8
    seed: int


@dataclass
class Session:
    """One browser's scene.

    Attributes:
        token: the random session id.
        name: a display name (the example's name or the uploaded file's stem).
        image: (H, W, 3) float32 in [0, 1], the photo at the editor's size.
        labels: its `LabelMap` (ids (H, W) in 0..K-1, palette (K, 3) uint8).
        key: content hash of image and labels (names the cached GAN).
        inputs: per task, what its newest result was made from, by name: "layout" the target
            ids (H, W) int64; "mask" (H, W) bool (task "remove"); "sketch" (H, W) float32, 0 on
            lines and 1 elsewhere, with "layout" when the sketch came with a target layout
            (task "sketch").
        results: the last result of each (task, method).
        last: the (task, method) of the newest result.
        cache: recent results, (task, method, seed, input digest) -> ((H, W, 3) uint8, PNG).
        latest: number of the newest result request; an older one still running gives up.
        edges: the photo's sketch-style edge map (H, W) float32 {0, 1}, made on first use.
    """

    token: str
    name: str
    image: np.ndarray
    labels: LabelMap
    key: str
    inputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    results: dict[tuple[str, str], Result] = field(default_factory=dict)
    last: tuple[str, str] = ("layout", "analogy")
    cache: OrderedDict = field(default_factory=OrderedDict)
    latest: int = 0
    edges: np.ndarray | None = None
    used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_request(self) -> int:
        """Register a new result request; every older one is now superseded."""
        with self.lock:
            self.latest += 1
            return self.latest

    def is_latest(self, request: int) -> bool:
        return self.latest == request


class UnknownSession(KeyError):
    """No open session has this token (never opened, closed, or expired)."""


class SessionStore:
    """Open sessions by token, least recently used first out."""

    def __init__(self, max_sessions: int, ttl_s: float) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._max, self._ttl = max_sessions, ttl_s
        self._lock = threading.Lock()

    def open(self, name: str, image: np.ndarray, labels: LabelMap) -> Session:
        """A new session for a photo (H, W, 3) float32 and its label map of the same size."""
        session = Session(
            token=secrets.token_urlsafe(18),
            name=name,
            image=np.ascontiguousarray(image, dtype=np.float32),
            labels=labels,
            key=photo_key(image, labels),
        )
        with self._lock:
            self._expire()
            self._sessions[session.token] = session
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)
        return session

    def get(self, token: str) -> Session:
        with self._lock:
            self._expire()
            session = self._sessions.get(token)
            if session is None:
                raise UnknownSession(token)
            self._sessions.move_to_end(token)
            session.used = time.monotonic()
            return session

    def close(self, token: str) -> None:
        with self._lock:
            if self._sessions.pop(token, None) is None:
                raise UnknownSession(token)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._sessions.items() if now - s.used > self._ttl]:
            del self._sessions[token]
