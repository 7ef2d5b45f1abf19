"""Bad inputs and faults: each gives a clear message and exit 2 (or 1 for internal errors),
never a traceback, and loses nothing (inputs and earlier outputs stay intact)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PALETTE, antialias, scene_ids
from PIL import Image
from safetensors.torch import load_file, save_file

from semia.cli import build_parser, main
from semia.cli.flags import THREADS_MAX
from semia.config import GeneratorConfig, TrainConfig
from semia.errors import InputError
from semia.gan import SemIA
from semia.gan import checkpoint as ckpt
from semia.io import LabelMap, read_image, read_label_map, write_image
from semia.io.arrays import fit_size, resize_image
from semia.io.files import LOCK_FILE

TINY = ["--iters", "3", "--crop-size", "32", "--threads", "1", "-q"]


def _run(*args: str) -> subprocess.CompletedProcess:
    """`semia ARGS` in this process (fast: torch is imported once); torch threads restored."""
    out, err, threads = io.StringIO(), io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse's usage errors
                code = e.code
    finally:
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def _run_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "semia.cli", *args], capture_output=True, text=True, timeout=300
    )


def _scene(tmp_path: Path, height: int = 48, width: int = 64) -> tuple[Path, Path, Path]:
    ids = scene_ids(height, width)
    base = np.array([[0.4, 0.6, 0.9], [0.1, 0.5, 0.1], [0.8, 0.6, 0.2]], np.float32)
    image = base[ids] + np.random.default_rng(0).normal(0, 0.05, (height, width, 3))
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(antialias(ids)).save(tmp_path / "label.png")
    Image.fromarray(antialias(np.roll(ids, width // 4, axis=1))).save(tmp_path / "target.png")
    return tmp_path / "img.png", tmp_path / "label.png", tmp_path / "target.png"


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def _assert_clean_error(r: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    for word in words:
        assert word in r.stderr, r.stderr


# --- outputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["image", "label", "target"])
def test_out_equal_to_an_input_is_refused(tmp_path, which):
    img, lab, tgt = _scene(tmp_path)
    victim = {"image": img, "label": lab, "target": tgt}[which]
    before = victim.read_bytes()
    r = _run("analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt),
             "--out", str(victim))  # fmt: skip
    _assert_clean_error(r, 2, "overwrite")
    assert victim.read_bytes() == before


def test_output_location_problems_fail_before_the_work(tmp_path):
    img, lab, tgt = _scene(tmp_path)
    args = ["analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt)]
    (tmp_path / "folder.png").mkdir()
    _assert_clean_error(_run(*args, "--out", str(tmp_path / "folder.png")), 2, "is a folder")
    (tmp_path / "afile").write_text("x")
    r = _run(*args, "--out", str(tmp_path / "afile" / "out.png"))
    _assert_clean_error(r, 2, "is a file")
    r = _run("generate", "--model", str(tmp_path), "--target", str(tgt),
             "--out", str(tmp_path / "afile"))  # fmt: skip
    _assert_clean_error(r, 2, "is a file")


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize(
    ("command", "second"), [("segment", "--overlay"), ("remove", "--save-labels")]
)
def test_two_outputs_of_one_file_are_refused(tmp_path, command, second, existing):
    out = tmp_path / "same.png"
    if existing:  # left by an earlier run: compared as files
        out.write_bytes(b"earlier")
    args = _command(command, tmp_path)
    args[args.index("--out") + 1] = str(out)
    r = _run(*args, second, str(tmp_path / "sub" / ".." / "same.png"))
    _assert_clean_error(
        r, 2, f"{second} {tmp_path}/sub/../same.png and --out {out} are the same file"
    )
    assert "input" not in r.stderr
    assert out.exists() == existing and (not existing or out.read_bytes() == b"earlier")


def test_an_output_equal_to_an_input_names_its_flag(tmp_path):
    img, lab, _ = _scene(tmp_path)
    args = _command("segment", tmp_path)
    r = _run(*args, "--overlay", str(img))
    _assert_clean_error(r, 2, f"--overlay {img} is the input file {img}")
    r = _run(*_command("remove", tmp_path), "--save-labels", str(lab))
    _assert_clean_error(r, 2, f"--save-labels {lab} is the input file {lab}")


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp"])
def test_remove_refuses_a_lossy_label_map_like_segment(tmp_path, suffix):
    labels = tmp_path / f"labels{suffix}"
    r = _run(*_command("remove", tmp_path), "--save-labels", str(labels))
    _assert_clean_error(r, 2, f"--save-labels {labels}: a lossy format would blur the label")
    r = _run(*_command("segment", tmp_path)[:-1], str(labels))
    _assert_clean_error(r, 2, f"--out {labels}: a lossy format would blur the label")
    assert not (tmp_path / "o.png").exists() and not labels.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused(tmp_path):
    img, lab, tgt = _scene(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    r = _run("analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt),
             "--out", str(locked / "out.png"))  # fmt: skip
    _assert_clean_error(r, 2, "not writable")


def test_write_image_refuses_values_it_would_saturate(tmp_path):
    ramp = np.linspace(0, 255, 8 * 8 * 3).reshape(8, 8, 3)
    with pytest.raises(InputError, match="uint8"):
        write_image(tmp_path / "a.png", ramp.astype(np.int64))
    with pytest.raises(InputError, match="divide"):
        write_image(tmp_path / "b.png", ramp.astype(np.float32))
    with pytest.raises(InputError, match="NaN"):
        write_image(tmp_path / "c.png", np.full((8, 8, 3), np.nan, np.float32))
    assert not list(tmp_path.iterdir())
    written = write_image(tmp_path / "d.png", (ramp / 255).astype(np.float32))
    np.testing.assert_allclose(read_image(written), ramp / 255, atol=0.5 / 255 + 1e-6)


# --- huge or hostile inputs ------------------------------------------------------------------


def test_decompression_bomb_header_is_a_clear_input_error(tmp_path):
    _, lab, tgt = _scene(tmp_path)
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 60000, 60000)
    assert bomb.stat().st_size < 100
    r = _run("analogy", "--image", str(bomb), "--label", str(lab), "--target", str(tgt),
             "--out", str(tmp_path / "o.png"))  # fmt: skip
    _assert_clean_error(r, 2, "megapixels")
    with pytest.raises(InputError, match="megapixels"):
        read_image(bomb)


def test_huge_npy_label_map_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(30000, 30000)).flush()
    with pytest.raises(InputError, match="megapixels"):
        read_label_map(path)


@pytest.mark.parametrize(
    "values",
    [
        np.array([[0, 2**63 + 5], [1, 0]], np.uint64),  # would wrap to a negative id
        np.array([[0.0, 1e30], [1.0, 0.0]]),  # would merge with other huge values
        np.array([[0.0, np.nan], [1.0, 0.0]]),
    ],
)
def test_npy_values_that_cannot_be_ids_are_refused(tmp_path, values):
    np.save(tmp_path / "m.npy", np.kron(values, np.ones((8, 8), values.dtype)))
    with pytest.raises(InputError, match="label"):
        read_label_map(tmp_path / "m.npy")


def test_large_jpeg_is_decoded_reduced_to_the_same_result(tmp_path):
    rng = np.random.default_rng(1)
    small = rng.uniform(0, 1, (30, 40, 3))
    big = np.kron(small, np.ones((60, 60, 1)))  # 1800 x 2400, smooth at 64 px
    Image.fromarray((big * 255).astype(np.uint8)).save(tmp_path / "big.jpg", quality=95)
    reduced = read_image(tmp_path / "big.jpg", 64)  # decoded at 1/8 scale (JPEG draft)
    full = resize_image(read_image(tmp_path / "big.jpg"), (48, 64))  # decoded whole
    assert reduced.shape == full.shape == (48, 64, 3)
    assert np.abs(reduced - full).mean() < 0.01


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--iters", "0"],
        ["--iters", "-5"],
        ["--iters", "2.5"],
        ["--max-size", "0"],
        ["--lr", "nan"],
        ["--lr", "inf"],
        ["--generator-norm", "batchnorm"],
        ["--device", "tpu"],
        ["--preset", "fast"],
    ],
)
def test_bad_train_settings_are_refused(tmp_path, flags):
    img, lab, _ = _scene(tmp_path)
    r = _run("train", "--image", str(img), "--label", str(lab), "--out", str(tmp_path / "m"),
             *flags)  # fmt: skip
    _assert_clean_error(r, 2)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "flags", [["--patch-size", "1001"], ["--patch-size", "4"], ["--guide-weight", "nan"],
              ["--samples", "0"], ["--max-size", "0"]]
)  # fmt: skip
def test_bad_analogy_settings_are_refused(tmp_path, flags):
    img, lab, tgt = _scene(tmp_path)
    r = _run("analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt),
             "--out", str(tmp_path / "o.png"), *flags)  # fmt: skip
    _assert_clean_error(r, 2)
    assert not (tmp_path / "o.png").exists()


def _command(name: str, tmp_path: Path) -> list[str]:
    """`semia NAME` with every file it needs (a small scene in tmp_path), up to its settings."""
    img, lab, tgt = _scene(tmp_path)
    files = {
        "analogy": ["--image", img, "--label", lab, "--target", tgt, "--out", "o.png"],
        "remove": ["--image", img, "--mask", lab, "--out", "o.png"],
        "train": ["--image", img, "--label", lab, "--out", "m", "--dry-run"],
        "generate": ["--model", "m", "--target", tgt, "--out", "g"],
        "segment": ["--image", img, "--scribbles", lab, "--out", "o.png"],
        "demo": ["--out", "d", "--examples", "none"],
    }[name]
    return [name, *(f if str(f).startswith("--") else str(tmp_path / f) for f in files)]


SEED_COMMANDS = ["analogy", "remove", "train", "generate", "segment", "demo"]


BAD_SEEDS = ["-1", "4294967296", "9223372036854775808", "-9223372036854775809",
             "99999999999999999999", "1.5"]  # fmt: skip


@pytest.mark.parametrize("seed", BAD_SEEDS)
@pytest.mark.parametrize("command", SEED_COMMANDS)
def test_seeds_outside_0_to_2_32_minus_1_are_usage_errors(tmp_path, command, seed):
    r = _run(*_command(command, tmp_path), "--seed", seed)
    _assert_clean_error(r, 2, "argument --seed: expected a whole number in 0..4294967295")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("command", SEED_COMMANDS)
def test_the_seed_range_ends_are_accepted(tmp_path, command):
    for seed in (0, 2**32 - 1):
        args = build_parser().parse_args([*_command(command, tmp_path), "--seed", str(seed)])
        assert args.seed == seed


def test_samples_may_not_take_the_seed_past_the_range(tmp_path):
    r = _run(*_command("analogy", tmp_path), "--seed", "4294967295", "--samples", "2")
    _assert_clean_error(r, 2, "--seed 4294967295 with --samples 2", "at most 4294967294")
    assert not list(tmp_path.glob("o*.png"))


@pytest.mark.parametrize("threads", ["100000", str(THREADS_MAX + 1), "-3", "two"])
def test_threads_outside_0_to_the_maximum_are_usage_errors(tmp_path, threads):
    assert max(256, os.cpu_count() or 1) == THREADS_MAX
    r = _run(*_command("analogy", tmp_path), "--threads", threads)
    _assert_clean_error(r, 2, f"argument --threads: expected a whole number in 0..{THREADS_MAX}")
    assert not (tmp_path / "o.png").exists()
    for good in (0, THREADS_MAX):
        args = [*_command("analogy", tmp_path), "--threads", str(good)]
        assert build_parser().parse_args(args).threads == good


def test_demo_refuses_negative_gan_iters(tmp_path):
    r = _run("demo", "--out", str(tmp_path / "d"), "--gan-iters", "-1")
    _assert_clean_error(r, 2, "argument --gan-iters: expected a whole number in 0..10000000")
    assert not (tmp_path / "d").exists()


def test_a_sketch_of_another_aspect_than_the_target_names_the_target(tmp_path):
    img, lab, _ = _scene(tmp_path)  # 64x48
    square = tmp_path / "square.png"
    Image.fromarray(antialias(scene_ids(48, 48))).save(square)
    sketch = np.full((48, 64, 3), 255, np.uint8)
    sketch[20:22] = 0
    Image.fromarray(sketch).save(tmp_path / "sketch.png")
    r = _run("analogy", "--image", str(img), "--label", str(lab), "--target", str(square),
             "--sketch", str(tmp_path / "sketch.png"), "--out", str(tmp_path / "o.png"),
             "--unknown-labels", "nearest")  # fmt: skip
    _assert_clean_error(
        r, 2, f"--sketch {tmp_path / 'sketch.png'} is 64x48 px but --target {square} is 48x48"
    )
    assert "photo" not in r.stderr


def test_an_unreadable_sketch_is_called_a_sketch(tmp_path):
    img, _, _ = _scene(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    r = _run("analogy", "--image", str(img), "--sketch", str(tmp_path / "empty.png"),
             "--out", str(tmp_path / "o.png"))  # fmt: skip
    _assert_clean_error(r, 2, f"--sketch {tmp_path / 'empty.png'}: the file is empty")
    assert "image" not in r.stderr


@pytest.mark.parametrize(
    ("command", "flag"),
    [("edges", "--image"), ("train", "--image"), ("evaluate", "--image"),
     ("evaluate", "--output")],
)  # fmt: skip
def test_images_below_8x8_are_named(tmp_path, command, flag):
    img, lab, tgt = _scene(tmp_path)
    tiny, tiny_label = tmp_path / "tiny.png", tmp_path / "tiny_label.png"
    Image.fromarray(np.full((4, 6, 3), 128, np.uint8)).save(tiny)
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tiny_label)
    source = (
        ["--image", tiny, "--label", tiny_label]
        if flag == "--image"
        else ["--image", img, "--label", lab]
    )
    args = {
        "edges": ["--image", tiny, "--out", tmp_path / "o.png"],
        "train": [*source, "--out", tmp_path / "m"],
        "evaluate": [*source, "--target", tgt, "--output", tiny if flag == "--output" else img],
    }[command]  # fmt: skip
    r = _run(command, *map(str, args))
    _assert_clean_error(r, 2, f"{flag} {tiny} is 6x4 px; use at least 8x8")
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "m").exists()


def test_evaluate_says_when_the_aspect_ratios_differ(tmp_path):
    img, lab, tgt = _scene(tmp_path)  # 64x48
    args = ["evaluate", "--image", str(img), "--label", str(lab), "--target", str(tgt)]
    for size, advice in [((48, 48), "their aspect ratios differ"), ((32, 24), "--max-size")]:
        output = tmp_path / f"out{size[0]}.png"
        Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(output)
        r = _run(*args, "--output", str(output), "--max-size", "64")
        _assert_clean_error(r, 2, f"is {size[0]}x{size[1]} but the target map is 64x48", advice)
        other = "--max-size" if advice != "--max-size" else "aspect ratios"
        assert other not in r.stderr


def test_evaluate_names_the_flag_of_a_missing_file(tmp_path):
    img, lab, tgt = _scene(tmp_path)
    args = ["evaluate", "--image", str(img), "--label", str(lab), "--target", str(tgt)]
    nope = tmp_path / "nope.png"
    r = _run(*args, "--output", str(nope))
    _assert_clean_error(r, 2, f"--output {nope}: no such file")
    r = _run(*args, "--output", str(img), "--reference", str(nope))
    _assert_clean_error(r, 2, f"--reference {nope}: no such file")


def test_evaluate_says_when_max_size_is_too_small_for_the_aspect_ratio(tmp_path):
    img, lab, tgt = _scene(tmp_path, height=40, width=64)
    args = ["evaluate", "--image", str(img), "--label", str(lab), "--target", str(tgt)]
    r = _run(*args, "--output", str(img), "--max-size", "10")
    _assert_clean_error(
        r, 2, f"--image {img} is 64x40 px; read at --max-size 10 it becomes 10x6 px, below 8x8 "
        "for its aspect ratio: use a --max-size of at least 12",
    )  # fmt: skip
    assert fit_size(40, 64, 12) == (8, 12) and fit_size(40, 64, 11) == (7, 11)


def test_evaluate_says_when_the_output_is_larger_than_the_source(tmp_path):
    img, lab, tgt = _scene(tmp_path)  # 64x48
    output = tmp_path / "big.png"
    Image.fromarray(np.full((96, 128, 3), 128, np.uint8)).save(output)
    args = ["evaluate", "--image", str(img), "--label", str(lab), "--target", str(tgt)]
    for extra in ([], ["--max-size", "200"]):
        r = _run(*args, "--output", str(output), *extra)
        _assert_clean_error(
            r, 2, f"output {output} is 128x96, larger than the source and target map (64x48 at "
            "full size); judge an output made from them at their size or smaller",
        )  # fmt: skip
        assert "--max-size" not in r.stderr


def test_preset_and_config_file_layers(tmp_path, capsys):
    base = ["train", "--image", "i", "--label", "l", "--out", "o", "--dry-run"]
    assert main([*base, "--preset", "original"]) == 0
    original = json.loads(capsys.readouterr().out)
    assert original == TrainConfig.original().to_dict()
    settings = tmp_path / "s.toml"
    settings.write_text('iters = 123\ncrop_size = 64\n[generator]\nnorm = "instance"\n')
    assert main([*base, "--config", str(settings), "--iters", "50"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["iters"] == 50 and resolved["crop_size"] == 64  # the flag wins over the file
    assert resolved["generator"]["norm"] == "instance"
    settings.write_text('[generator]\nnorm = "batchnorm"\n')
    assert main([*base, "--config", str(settings)]) == 2
    assert "batchnorm" in capsys.readouterr().err
    settings.write_text("iterz = 5\n")
    assert main([*base, "--config", str(settings)]) == 2
    assert "unknown setting" in capsys.readouterr().err


# --- models and training state ----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny model trained by the CLI (3 iterations)."""
    tmp = tmp_path_factory.mktemp("trained")
    img, lab, _ = _scene(tmp)
    r = _run("train", "--image", str(img), "--label", str(lab), "--out", str(tmp / "model"), *TINY)
    assert r.returncode == 0, r.stderr
    return tmp / "model"


def _crafted(src: Path, dst: Path, tensors=None, metadata=None) -> Path:
    stored = load_file(src / ckpt.MODEL_FILE)
    from safetensors import safe_open

    with safe_open(str(src / ckpt.MODEL_FILE), framework="pt") as f:
        meta = dict(f.metadata())
    stored.update(tensors or {})
    meta.update(metadata or {})
    dst.mkdir(parents=True, exist_ok=True)
    save_file(stored, dst / ckpt.MODEL_FILE, metadata=meta)
    return dst


def _config_json(path: Path, **generator) -> str:
    config = SemIA.load(path).config.to_dict()
    config["generator"].update(generator)
    return json.dumps(config)


@pytest.mark.parametrize(
    "change",
    ["no_config", "config_list", "channels", "labels_range", "nan_weights", "nan_image",
     "negative_version", "bad_kind", "truncated"],
)  # fmt: skip
def test_crafted_or_damaged_model_files_are_refused(trained, tmp_path, change):
    stored = load_file(trained / ckpt.MODEL_FILE)
    tensors, metadata = {}, {}
    if change == "no_config":
        metadata["config"] = ""
    elif change == "config_list":
        metadata["config"] = "[1, 2]"
    elif change == "channels":
        metadata["config"] = _config_json(trained, base_channels=10**9)
    elif change == "labels_range":
        tensors["source_labels"] = stored["source_labels"] + 50
    elif change == "nan_weights":
        name = next(k for k in stored if k.startswith("G.") and stored[k].is_floating_point())
        tensors[name] = torch.full_like(stored[name], float("nan"))
    elif change == "nan_image":
        tensors["source_image"] = torch.full_like(stored["source_image"], float("nan"))
    elif change == "negative_version":
        metadata["version"] = "-1"
    elif change == "bad_kind":
        metadata["label_kind"] = "hologram"
    model = _crafted(trained, tmp_path / "m", tensors, metadata)
    if change == "truncated":
        data = (trained / ckpt.MODEL_FILE).read_bytes()
        (model / ckpt.MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=str(model)):
        SemIA.load(model)
    r = _run("generate", "--model", str(model), "--target", str(trained.parent / "target.png"),
             "--out", str(tmp_path / "out"))  # fmt: skip
    _assert_clean_error(r, 2, "model")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_model_without_generator_weights_is_a_one_line_error(trained, tmp_path):
    from safetensors import safe_open

    stored = load_file(trained / ckpt.MODEL_FILE)
    with safe_open(str(trained / ckpt.MODEL_FILE), framework="pt") as f:
        metadata = dict(f.metadata())
    kept = {k: v for k, v in stored.items() if not k.startswith("G.")}
    (tmp_path / "m").mkdir()
    save_file(kept, tmp_path / "m" / ckpt.MODEL_FILE, metadata=metadata)
    r = _run("generate", "--model", str(tmp_path / "m"), "--target",
             str(trained.parent / "target.png"), "--out", str(tmp_path / "out"))  # fmt: skip
    missing = len(stored) - len(kept)
    _assert_clean_error(r, 2, f"{missing} of the {missing} generator weights are missing",
                        "not a complete semia model")  # fmt: skip
    assert r.stderr.count("\n") == 1 and len(r.stderr) < 400, r.stderr


def test_generate_checks_every_target_before_writing(trained, tmp_path):
    good = trained.parent / "target.png"
    bad = tmp_path / "bad.png"
    colours = antialias(scene_ids(48, 64), np.array([[250, 0, 250], [0, 0, 0], [9, 9, 9]]))
    Image.fromarray(colours).save(bad)
    out = tmp_path / "out"
    r = _run(
        "generate", "--model", str(trained), "--target", str(good), str(bad), "--out", str(out)
    )
    _assert_clean_error(r, 2, "bad.png", "--unknown-labels nearest")
    assert not out.exists() or not list(out.iterdir())


def test_evaluate_judges_a_generate_output_without_flags(trained, tmp_path):
    tgt = trained.parent / "target.png"
    r = _run("generate", "--model", str(trained), "--target", str(tgt), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    r = _run("evaluate", "--image", str(trained.parent / "img.png"), "--label",
             str(trained.parent / "label.png"), "--target", str(tgt), "--output",
             str(tmp_path / "target.png"), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert 0.0 <= json.loads(r.stdout)["label_accuracy"] <= 1.0


def test_damaged_training_state_on_resume_is_refused(trained, tmp_path):
    img, lab = trained.parent / "img.png", trained.parent / "label.png"
    for damage in ("truncate", "json"):
        run = tmp_path / damage
        run.mkdir()
        for name in (ckpt.STATE_FILE, ckpt.STATE_JSON, ckpt.MODEL_FILE):
            (run / name).write_bytes((trained / name).read_bytes())
        if damage == "truncate":
            data = (run / ckpt.STATE_FILE).read_bytes()
            (run / ckpt.STATE_FILE).write_bytes(data[: len(data) // 3])
        else:
            (run / ckpt.STATE_JSON).write_text('{"step": "three"')
        r = _run("train", "--image", str(img), "--label", str(lab), "--out", str(run), "--resume",
                 *TINY)  # fmt: skip
        _assert_clean_error(r, 2, "damaged")


def test_resume_with_other_settings_names_the_flags_that_restore_them(trained, tmp_path):
    img, lab = trained.parent / "img.png", trained.parent / "label.png"
    run = tmp_path / "run"
    run.mkdir()
    for name in (ckpt.STATE_FILE, ckpt.STATE_JSON, ckpt.MODEL_FILE):
        (run / name).write_bytes((trained / name).read_bytes())
    r = _run("train", "--image", str(img), "--label", str(lab), "--out", str(run), "--resume",
             *TINY, "--lr", "0.01", "--generator-norm", "instance", "--seed", "5")  # fmt: skip
    _assert_clean_error(
        r, 2, "seed was 0, now 5", "--lr 0.002", "--generator-norm pixel", "--seed 0"
    )


def test_a_second_training_run_on_a_locked_folder_is_refused(tmp_path):
    img, lab, _ = _scene(tmp_path)
    out = tmp_path / "model"
    out.mkdir()
    (out / LOCK_FILE).write_text(f"{os.getpid()}\n")  # this test process is alive
    r = _run_process("train", "--image", str(img), "--label", str(lab), "--out", str(out), *TINY)
    _assert_clean_error(r, 2, "in use by process")
    assert not (out / ckpt.MODEL_FILE).exists()


def test_a_stale_lock_and_temp_files_of_a_killed_run_are_cleaned(tmp_path):
    img, lab, _ = _scene(tmp_path)
    out = tmp_path / "model"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    (out / LOCK_FILE).write_text(f"{dead}\n")
    stale = out / ".train_state-k9x.safetensors"
    stale.write_bytes(b"\0" * 1024)
    r = _run("train", "--image", str(img), "--label", str(lab), "--out", str(out),
             "--iters", "3", "--crop-size", "32", "--threads", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "stale lock" in r.stderr
    assert not stale.exists() and not (out / LOCK_FILE).exists()
    assert (out / ckpt.MODEL_FILE).exists()


def test_ctrl_c_before_the_first_checkpoint_leaves_a_usable_model(tmp_path):
    ids = scene_ids(24, 32)
    image = (np.array(PALETTE, np.float32)[ids] / 255.0).astype(np.float32)
    config = TrainConfig(iters=20, checkpoint_every=0, preview_every=0, crop_size=0,
                         generator=GeneratorConfig(base_channels=4, label_channels=4))  # fmt: skip

    def stop(step, total, losses):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SemIA.train(image, LabelMap(ids, PALETTE), tmp_path, config, progress=stop)
    model = SemIA.load(tmp_path)
    assert model.generate(ids).shape == image.shape


def test_generate_says_once_that_the_model_s_training_was_interrupted(trained, tmp_path):
    img, lab, tgt = (trained.parent / n for n in ("img.png", "label.png", "target.png"))
    image, labels = read_image(img), read_label_map(lab)
    config = TrainConfig(iters=20, checkpoint_every=0, preview_every=0, crop_size=32,
                         generator=GeneratorConfig(base_channels=4, label_channels=4))  # fmt: skip

    def stop(step, total, losses):
        if step == 2:
            raise KeyboardInterrupt

    model = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt):
        SemIA.train(image, labels, model, config, progress=stop)
    r = _run("generate", "--model", str(model), "--target", str(tgt), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    note = (
        f"semia: model {model / ckpt.MODEL_FILE}: training stopped at step 2 of 20 (interrupted); "
        f"resume it with `semia train --resume --out {model}` and the flags it was started with "
        "for the full result"
    )
    assert r.stderr.count("training stopped") == 1 and note in r.stderr, r.stderr
    assert (tmp_path / "o" / "target.png").is_file()
    r = _run("generate", "--model", str(trained), "--target", str(tgt), "--out", str(tmp_path))
    assert r.returncode == 0 and "training stopped" not in r.stderr, r.stderr


# --- exit codes ---------------------------------------------------------------------------------


def test_internal_errors_are_exit_1_and_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    img, lab, tgt = _scene(tmp_path)
    args = ["analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt),
            "--out", str(tmp_path / "o.png")]  # fmt: skip

    def broken(*a, **k):
        raise ValueError("an internal bug")

    monkeypatch.setattr("semia.patch.analogy", broken)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "an internal bug" in err and "report it" in err
    with pytest.raises(ValueError, match="an internal bug"):
        main([*args, "--debug"])


def test_importing_semia_changes_no_global_state():
    code = (
        "import PIL.Image as I, torch; t = torch.get_num_threads(); p = I.MAX_IMAGE_PIXELS\n"
        "import semia, semia.cli, semia.io, semia.eval, numpy as np\n"
        "img = np.random.default_rng(0).uniform(0, 1, (32, 32, 3)).astype(np.float32)\n"
        "ids = np.zeros((32, 32), np.int64); ids[16:] = 1\n"
        "semia.evaluate(img, ids, ids, img)\n"
        "print(torch.get_num_threads() == t, I.MAX_IMAGE_PIXELS == p)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["True", "True"], r.stderr
    r = subprocess.run(
        [sys.executable, "-c", "import sys, semia.cli; print('torch' in sys.modules)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.stdout.strip() == "False"  # --version and --help never import torch
