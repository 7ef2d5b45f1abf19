"""Progress bars on stderr for the library's progress callbacks."""

from __future__ import annotations

import sys


class Bar:
    """A tqdm bar on stderr driven by a library progress callback."""

    def __init__(self, desc: str, quiet: bool) -> None:
        self.desc, self.quiet, self.bar = desc, quiet, None

    def __call__(self, done: int, total: int, info: dict | None = None) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=max(done - 1, 0), desc=self.desc, leave=False, file=sys.stderr
            )
        if info:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in info.items()}, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
