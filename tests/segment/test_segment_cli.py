"""`semia segment` end to end on files, and its bad-input errors."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from semia.cli_segment import register, run
from semia.io import InputError, read_image, read_label_map
from semia.segment import demo_scribbles


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="semia")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["segment", *argv])


def iou(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return float(((a == k) & (b == k)).sum() / ((a == k) | (b == k)).sum())


@pytest.fixture
def files(tmp_path, textured_scene):
    image, truth = textured_scene()
    Image.fromarray((image * 255).round().astype(np.uint8)).save(tmp_path / "photo.jpg", quality=95)
    strokes = demo_scribbles(truth, dense=True)
    big = np.kron(strokes.to_rgba(), np.ones((2, 2, 1), np.uint8))  # drawn at twice the size
    Image.fromarray(big).save(tmp_path / "strokes.png")
    return tmp_path, truth


def test_segment_writes_the_map_and_the_overlay(files):
    folder, truth = files
    out, check = folder / "out" / "label.png", folder / "check.png"
    args = parse(["--image", str(folder / "photo.jpg"), "--scribbles", str(folder / "strokes.png"),
                  "--out", str(out), "--overlay", str(check)])  # fmt: skip
    assert run(args) == 0
    labels = read_label_map(out)
    assert labels.size == truth.size
    palette = truth.palette.tolist()
    assert {tuple(c) for c in labels.palette.tolist()} == {tuple(c) for c in palette}
    lookup = {tuple(c): k for k, c in enumerate(palette)}
    ids = np.array([lookup[tuple(c)] for c in labels.palette.tolist()])[labels.ids]
    assert min(iou(ids, truth.ids, k) for k in range(3)) > 0.9
    assert read_image(check).shape == (*truth.size, 3)


def test_segment_bad_inputs(files):
    folder, _ = files
    wide = np.zeros((10, 40, 4), np.uint8)
    wide[2:6, 2:10] = [255, 0, 0, 255]
    wide[2:6, 20:30] = [0, 0, 255, 255]
    Image.fromarray(wide).save(folder / "wide.png")
    args = parse(["--image", str(folder / "photo.jpg"), "--scribbles", str(folder / "wide.png"),
                  "--out", str(folder / "label.png")])  # fmt: skip
    with pytest.raises(InputError, match=r"--scribbles .*wide.png are 40x10 .*aspect ratio"):
        run(args)
    args = parse(["--image", str(folder / "photo.jpg"), "--scribbles", str(folder / "strokes.png"),
                  "--out", str(folder / "label.jpg")])  # fmt: skip
    with pytest.raises(InputError, match=r"--out .*label.jpg.*\.png"):
        run(args)
    assert not (folder / "label.png").exists() and not (folder / "label.jpg").exists()


def test_segment_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(["--help"])
    assert exit_info.value.code == 0
    assert "--scribbles" in capsys.readouterr().out
