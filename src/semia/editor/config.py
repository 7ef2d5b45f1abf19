"""`EditorConfig`: the settings of `semia edit` (validated, with their defaults and help)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from semia.config import Config, setting


@dataclass(frozen=True)
class EditorConfig(Config):
    """`semia edit`: the local web editor (src/semia/editor/)."""

    max_size: int = setting(
        256,
        "longest side of photos in the editor; larger ones are downscaled (a result takes "
        "about 0.2 s at 256 px, 3 to 4 times that at 512 px, on 2 CPU cores)",
        lo=16,
        hi=4096,
    )
    max_upload_mb: float = setting(25.0, "largest request body accepted, in MiB", lo=0.01, hi=4096)
    max_pixels: int = setting(
        40_000_000,
        "largest image (width x height) an upload may decode to",
        lo=256,
        hi=400_000_000,
    )
    max_sessions: int = setting(
        16, "open sessions kept; the least recently used is dropped beyond it", lo=1, hi=100_000
    )
    session_ttl_s: float = setting(
        6 * 3600.0, "a session idle this many seconds is dropped", lo=1.0, hi=1e8
    )
    gan_iters: int = setting(
        0, "GAN training iterations of 'Train GAN' (0: TrainConfig's default)", lo=0, hi=10**7
    )
    gan_threads: int = setting(
        0, "torch threads of the training process (0: all cores but one)", lo=0, hi=4096
    )
    cache_dir: str = setting("", 'trained models, one folder per photo ("": ~/.cache/semia/editor)')

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def cache_path(self) -> Path:
        """The model cache folder (XDG_CACHE_HOME honoured)."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "semia" / "editor"

    def training_iters(self) -> int:
        """gan_iters, or TrainConfig's default for 0."""
        from semia.config import TrainConfig

        return self.gan_iters or TrainConfig().iters
