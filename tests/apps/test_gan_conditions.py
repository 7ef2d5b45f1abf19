"""SemIA conditioned on edges or labels + edges: training, saving, generating from a sketch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import semia
from semia.config import (
    AugmentConfig,
    DiscriminatorConfig,
    GenerateConfig,
    GeneratorConfig,
    SegmenterConfig,
    TrainConfig,
)
from semia.errors import InputError
from semia.gan import SemIA
from semia.gan.conditions import condition_channels, make_condition
from semia.gan.steps import setup_run, train_iteration
from semia.io import LabelMap

pytestmark = pytest.mark.usefixtures("one_thread")
PALETTE = np.array([[40, 40, 40], [200, 30, 30]], np.uint8)


def _scene(h: int = 32, w: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A dark background with a red square: (H, W, 3) float32 image, (H, W) ids."""
    labels = np.zeros((h, w), np.int64)
    labels[8:24, 8:20] = 1
    rng = np.random.default_rng(0)
    image = PALETTE[labels] / 255.0 + rng.normal(0, 0.02, (h, w, 3))
    return np.clip(image, 0, 1).astype(np.float32), labels


def _config(condition: str, iters: int = 6) -> TrainConfig:
    return TrainConfig(
        condition=condition,
        iters=iters,
        crop_size=24,
        full_size_iters=2,
        checkpoint_every=0,
        preview_every=0,
        generator=GeneratorConfig(
            base_channels=8, label_channels=8, max_label_channels=16, norm="pixel"
        ),
        discriminator=DiscriminatorConfig(base_channels=8, pyramid_channels=16),
        segmenter=SegmenterConfig(base_channels=8, aspp_channels=8),
        augment=AugmentConfig(ramp_iters=2),
    )


def test_condition_channels_and_stacking():
    ids = torch.zeros(1, 4, 5, dtype=torch.long)
    edges = torch.rand(1, 1, 4, 5)
    assert condition_channels("labels", 3) == 3 and condition_channels("edges", 3) == 1
    assert make_condition("labels+edges", ids, edges, 3).shape == (1, 4, 4, 5)
    assert torch.equal(make_condition("edges", ids, edges, 3), edges)
    with pytest.raises(ValueError, match="edge"):
        make_condition("edges", ids, None, 3)
    with pytest.raises(Exception, match="condition"):
        TrainConfig(condition="pixels")


def test_edge_channel_of_a_real_size_photo_is_float32():
    from semia.gan.conditions import photo_edges

    image = np.zeros((128, 256, 3), np.float32)
    image[40:90, 60:200] = 0.8
    channel = photo_edges(image)
    assert channel.dtype == np.float32 and channel.shape == (128, 256)
    assert channel.max() > 0.9 and channel[5:30, 5:40].max() == 0.0


def test_the_edge_channel_is_warped_with_the_image(tmp_path):
    image, labels = _scene()
    run = setup_run(image, labels, 2, tmp_path, _config("labels+edges"), device="cpu", seed=0,
                    edges=np.zeros(labels.shape, np.float32))  # fmt: skip
    assert run.source.shape == (1, 3, 32, 40)
    record = train_iteration(run, 3)
    assert np.isfinite(record.get("rec_l1", record.get("g_gan", 0.0)))


@pytest.mark.parametrize("condition", ["edges", "labels+edges"])
def test_gan_with_edges_trains_saves_and_generates(tmp_path, condition):
    image, labels = _scene()
    lab = None if condition == "edges" else LabelMap(labels, PALETTE)
    model = SemIA.train(image, lab, tmp_path / "m", _config(condition), seed=0)
    assert model.condition == condition
    first = model.generator.label_encoder.stem.weight.shape[1]
    assert first == (1 if condition == "edges" else 3)
    sketch = np.ones((64, 80), np.float32)  # the square's outline, drawn at twice the size
    sketch[16:48, [16, 40]] = 0
    sketch[[16, 48], 16:41] = 0
    target = labels if condition == "labels+edges" else None
    out = model.generate(target, sketch=sketch)
    assert out.shape == (32, 40, 3) and np.isfinite(out).all()
    loaded = SemIA.load(tmp_path / "m")
    assert loaded.condition == condition
    assert np.allclose(loaded.generate(target, sketch=sketch), out, atol=1e-6)
    with pytest.raises(InputError, match="sketch"):
        model.generate(target)


def test_label_models_refuse_sketches_and_edges_models_need_no_labels(tmp_path):
    image, labels = _scene()
    with pytest.raises(InputError, match="label map"):
        SemIA.train(image, None, tmp_path / "a", _config("labels+edges"))
    model = SemIA.train(image, LabelMap(labels, PALETTE), tmp_path / "b", _config("labels", 2))
    with pytest.raises(InputError, match="label maps only"):
        model.generate(labels, sketch=np.ones((32, 40)))


def test_cli_train_edges_and_generate_from_a_sketch(tmp_path, capsys):
    from PIL import Image

    from semia.cli import main

    image, _ = _scene()
    Image.fromarray((image * 255).round().astype(np.uint8)).save(tmp_path / "img.png")
    sketch = np.full((32, 40), 255, np.uint8)
    sketch[8:24, [10, 22]] = 0
    Image.fromarray(sketch).save(tmp_path / "new.png")
    model = tmp_path / "model"
    args = ["train", "--image", str(tmp_path / "img.png"), "--condition", "edges", "--iters",
            "2", "--crop-size", "0", "--full-size-iters", "0", "--out", str(model),
            "-q"]  # fmt: skip
    assert main(args) == 0
    args = ["generate", "--model", str(model), "--sketch", str(tmp_path / "new.png"), "--out",
            str(tmp_path / "res"), "-q"]  # fmt: skip
    assert main(args) == 0
    out = np.asarray(Image.open(tmp_path / "res" / "new.png"))
    assert out.shape == (32, 40, 3)
    capsys.readouterr()
    args = ["generate", "--model", str(model), "--out", str(tmp_path / "res"), "-q"]
    assert main(args) == 2
    assert "--sketch is needed" in capsys.readouterr().err
    args = ["train", "--image", str(tmp_path / "img.png"), "--out", str(tmp_path / "m2"), "-q"]
    assert main(args) == 2
    assert "--label is needed" in capsys.readouterr().err


def test_labels_and_edges_training_refines_the_analogy_guided_by_both(tmp_path):
    """fill_changed "analogy" with labels + edges: the pair's edge channels guide the
    training-time analogy as a sketch guides `semia.analogy`; changed lines alone count as a
    change; the edges-only condition keeps G's block fill."""
    from semia.gan.steps import _analogy_init
    from semia.gan.tensors import image_to_tensor

    image, labels = _scene()
    lines = np.zeros(labels.shape, np.float32)
    lines[8, 8:20] = lines[23, 8:20] = lines[8:24, 8] = lines[8:24, 19] = 1.0
    moved = np.roll(lines, 6, axis=1)
    img = image_to_tensor(image, "cpu")
    ids = torch.from_numpy(labels)[None]
    shifted = torch.from_numpy(np.roll(labels, 6, axis=1))[None]
    src_e, tgt_e = (torch.from_numpy(x)[None, None] for x in (lines, moved))

    def made(condition, target, edges):
        run = setup_run(image, labels, 2, tmp_path, _config(condition), device="cpu", seed=0,
                        edges=lines)  # fmt: skip
        return _analogy_init(run, img, ids, target, edges)

    both = made("labels+edges", ids, (src_e, tgt_e))  # same labels, moved lines
    assert both is not None and both.shape == img.shape
    assert made("labels+edges", ids, (src_e, src_e)) is None  # nothing changes
    assert made("edges", shifted, (src_e, tgt_e)) is None
    guided = made("labels+edges", shifted, (src_e, tgt_e))
    plain = made("labels", shifted, (None, None))
    assert guided is not None and plain is not None
    assert (guided - plain).abs().max() > 0.05  # the lines steer which patches are copied


def test_labels_and_edges_generation_keeps_the_analogy_where_the_lines_moved_texture(tmp_path):
    """Where a sketch moves texture but the label stays, G's image input is the source as it
    was (only changed labels get the analogy), so G cannot follow the lines: the output is the
    analogy's there, except along the target's class boundaries (class_band)."""
    image, labels = _scene()
    model = SemIA.train(image, LabelMap(labels, PALETTE), tmp_path / "m", _config("labels+edges"))
    sketch = np.ones((32, 40), np.float32)  # the square's outline, 3 px to the right
    sketch[8:24, [11, 22]] = 0
    sketch[[8, 23], 11:23] = 0
    made = semia.analogy(image, labels, labels, sketch=sketch, seed=0)
    plain = GenerateConfig(anchor_sigma=0.0, keep_copied=False)  # G's own output, band apart
    model.config = dataclasses.replace(model.config, generate=plain)
    out = model.generate(labels, init=made, sketch=sketch)
    moved = np.abs(made - image).max(-1) >= 0.5 / 255
    boundary = np.zeros(labels.shape, bool)
    boundary[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    boundary[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    boundary[1:] |= labels[1:] != labels[:-1]
    boundary[:-1] |= labels[1:] != labels[:-1]
    inside = moved & ~boundary
    assert inside.sum() > 20
    np.testing.assert_allclose(out[inside], made[inside], atol=1e-5)
    free = dataclasses.replace(plain, class_band=-1)
    model.config = dataclasses.replace(model.config, generate=free)
    everywhere = model.generate(labels, init=made, sketch=sketch)
    assert np.abs(everywhere[inside] - made[inside]).mean() > 0.01
