"""`semia segment` end to end on files, and its bad-input exits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semia.cli import main
from semia.io import read_image, read_label_map
from semia.segment import demo_scribbles


def iou(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return float(((a == k) & (b == k)).sum() / ((a == k) | (b == k)).sum())


@pytest.fixture
def files(tmp_path, textured_scene):
    image, truth = textured_scene()
    photo = (image * 255).round().astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=95)
    strokes = demo_scribbles(truth, dense=True)
    big = np.kron(strokes.to_rgba(), np.ones((2, 2, 1), np.uint8))  # drawn at twice the size
    Image.fromarray(big).save(tmp_path / "strokes.png")
    return tmp_path, truth


def test_segment_writes_the_map_and_the_overlay(files):
    folder, truth = files
    out, check = folder / "out" / "label.png", folder / "check.png"
    argv = ["segment", "--image", str(folder / "photo.jpg"), "--scribbles",
            str(folder / "strokes.png"), "--out", str(out), "--overlay", str(check)]  # fmt: skip
    assert main(argv) == 0
    labels = read_label_map(out)
    assert labels.size == truth.size
    palette = truth.palette.tolist()
    assert {tuple(c) for c in labels.palette.tolist()} == {tuple(c) for c in palette}
    lookup = {tuple(c): k for k, c in enumerate(palette)}
    ids = np.array([lookup[tuple(c)] for c in labels.palette.tolist()])[labels.ids]
    assert min(iou(ids, truth.ids, k) for k in range(3)) > 0.9
    assert read_image(check).shape == (*truth.size, 3)


def test_segment_bad_inputs_exit_2(files, capsys):
    folder, _ = files
    wide = np.zeros((10, 40, 4), np.uint8)
    wide[2:6, 2:10] = [255, 0, 0, 255]
    wide[2:6, 20:30] = [0, 0, 255, 255]
    Image.fromarray(wide).save(folder / "wide.png")
    one = np.zeros((48, 64, 4), np.uint8)  # half the photo's size, one colour only
    one[5:10, 5:30] = [255, 0, 0, 255]
    one[30:35, 5:30] = [255, 0, 0, 255]
    Image.fromarray(one).save(folder / "one.png")
    Image.fromarray(np.full((96, 128, 3), 255, np.uint8)).save(folder / "blank.png")
    photo, strokes = str(folder / "photo.jpg"), str(folder / "strokes.png")
    cases = [
        (["--scribbles", str(folder / "wide.png"), "--out", "l.png"], r"wide.png are 40x10"),
        (["--scribbles", str(folder / "one.png"), "--out", "l.png"], "single colour"),
        (["--scribbles", str(folder / "blank.png"), "--out", "l.png"], "no strokes"),
        (["--scribbles", strokes, "--out", "l.jpg"], r"--out l.jpg: a lossy"),
        (["--scribbles", strokes, "--out", "l.png", "--overlay", "c.txt"], "--overlay c.txt"),
        (["--scribbles", strokes, "--out", strokes], "is the input file"),
    ]
    for extra, message in cases:
        assert main(["segment", "--image", photo, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not list(folder.glob("l.*"))


def test_segment_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", "--help"])
    assert exit_info.value.code == 0
    assert "--scribbles" in capsys.readouterr().out
