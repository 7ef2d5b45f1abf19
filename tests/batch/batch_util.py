"""Helpers of the batch tests: scenes copied from the packaged examples, manifests, results."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from semia import analogy, load_scene, read_target
from semia.io import to_uint8

EXAMPLES = Path(str(resources.files("semia") / "examples"))
SIZE = 64  # max_size of every test job: tiny images keep the tests fast


def copy_examples(root: Path) -> Path:
    """Copy the packaged tree and lake scenes into root (tests may change the copies)."""
    for scene in ("tree", "lake"):
        shutil.copytree(EXAMPLES / scene, root / scene)
    return root


def line(scene: str, targets: list[str], **settings) -> dict:
    """A manifest line for a copied scene, paths relative to the manifest's folder."""
    return {
        "image": f"{scene}/img.png",
        "label": f"{scene}/label.png",
        "targets": [f"{scene}/cond/{t}.png" for t in targets],
        "max_size": SIZE,
        **settings,
    }


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def expected_analogy(root: Path, scene: str, target: str, seed: int = 0) -> np.ndarray:
    """What `semia analogy` makes of this target at SIZE, as the uint8 image a job writes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a batch worker: same reductions, same pixels
    try:
        image, labels = load_scene(root / scene / "img.png", root / scene / "label.png", SIZE)
        tgt = read_target(root / scene / "cond" / f"{target}.png", labels, "error", SIZE)
        return to_uint8(analogy(image, labels, tgt, seed=seed))
    finally:
        torch.set_num_threads(threads)


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "report.jsonl").read_text().splitlines()]
