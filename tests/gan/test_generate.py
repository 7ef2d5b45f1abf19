"""Generation settings (GenerateConfig): G refining the analogy, compositing the source back."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from semia.config import ConfigError, GenerateConfig, GeneratorConfig, PatchConfig, TrainConfig
from semia.gan import SemIA
from semia.gan.networks import Generator
from semia.gan.networks.fill import changed_mask, paste_changed
from semia.gan.tensors import image_to_tensor, one_hot
from semia.patch import analogy

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)

pytestmark = pytest.mark.usefixtures("one_thread")


def _scene(h: int = 32, w: int = 40) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((h, w), np.int64)
    labels[:, w // 2 :] = 1
    labels[h // 4 : h // 2, 3:12] = 2
    rng = np.random.default_rng(0)
    image = PALETTE[labels] / 255.0 * 0.7 + 0.1 + rng.uniform(0, 0.2, (h, w, 3))
    return image.astype(np.float32), labels


def _plain(**settings) -> GenerateConfig:
    """Generation settings without the colour anchor, the copy-keeping and the class band
    (tested apart)."""
    return GenerateConfig(
        **{"anchor_sigma": 0.0, "keep_copied": False, "class_band": -1, **settings}
    )


def _model(generate: GenerateConfig) -> SemIA:
    image, labels = _scene()
    config = TrainConfig(
        generator=GeneratorConfig(base_channels=8, label_channels=8), generate=generate
    )
    torch.manual_seed(0)
    return SemIA(Generator(len(PALETTE), config.generator), image, labels, PALETTE, config)


def _edit(labels: np.ndarray) -> np.ndarray:
    """The source layout with a 6x6 square of class 2 in the class-1 half."""
    target = labels.copy()
    target[20:26, 26:32] = 2
    return target


def _far_from(changed: np.ndarray, margin: int) -> np.ndarray:
    """Pixels farther than `margin` (Chebyshev) from every True pixel of `changed`."""
    near = torch.from_numpy(changed.astype(np.float32))[None, None]
    near = torch.nn.functional.max_pool2d(near, 2 * margin + 1, stride=1, padding=margin)
    return near[0, 0].numpy() == 0


def test_generate_config_defaults_and_validation():
    assert TrainConfig().generate == GenerateConfig(
        init="analogy",
        anchor_sigma=2.0,
        keep_copied=True,
        composite_margin=-1,
        refine_band=-1,
        class_band=1,
        analogy_margin=4,
    )
    assert TrainConfig.original().generate.init == "fill"  # G alone: nothing to anchor to
    assert TrainConfig.original().generate.composite_margin == -1
    with pytest.raises(ConfigError, match="init"):
        GenerateConfig(init="blocks")
    with pytest.raises(ConfigError, match="composite_margin"):
        GenerateConfig(composite_margin=-2)
    with pytest.raises(ConfigError, match="anchor_sigma"):
        GenerateConfig(anchor_sigma=-1.0)
    config = TrainConfig.from_dict({"generate": {"composite_margin": 3}})
    assert config.generate == replace(GenerateConfig(), composite_margin=3)


def test_compositing_keeps_the_source_far_from_every_change():
    model = _model(_plain(init="analogy", composite_margin=3))
    target = _edit(model.source_labels)
    out = model.generate(target)
    far = _far_from(target != model.source_labels, 3)
    assert 0.5 < far.mean() < 0.95
    np.testing.assert_allclose(out[far], model.source_image[far], atol=1e-6)
    assert np.abs(out[~far] - model.source_image[~far]).mean() > 0.02  # the edit is made
    # without compositing the (untrained) generator re-renders the unchanged pixels
    plain = _model(_plain(init="analogy", composite_margin=-1)).generate(target)
    assert np.abs(plain[far] - model.source_image[far]).mean() > 0.02
    np.testing.assert_array_equal(plain[~far], out[~far])


def test_compositing_is_off_for_another_size():
    model = _model(_plain(init="fill", composite_margin=0))
    target = _edit(model.source_labels)[:, :36]
    plain = _model(_plain(init="fill", composite_margin=-1)).generate(target)
    np.testing.assert_array_equal(model.generate(target), plain)


def test_refine_feeds_the_analogy_into_the_changed_region():
    model = _model(_plain(init="analogy", composite_margin=-1))
    image, labels = model.source_image, model.source_labels
    target = _edit(labels)
    made = analogy(image, model.labels, target, seed=0, config=PatchConfig().for_refinement())
    np.testing.assert_array_equal(model.generate(target), model.generate(target, init=made))
    # G sees the source outside the changed region (dilated by fill_dilate), the init inside
    off = Generator(3, replace(model.config.generator, fill_changed="off"))
    off.load_state_dict(model.generator.state_dict())
    x, init = image_to_tensor(image, "cpu"), image_to_tensor(made, "cpu")
    src = one_hot(torch.from_numpy(labels)[None], 3)
    tgt = one_hot(torch.from_numpy(target)[None], 3)
    dilate = model.config.generator.fill_dilate
    with torch.no_grad():
        expected = off.eval()(paste_changed(x, src, tgt, init, dilate), src, tgt)
        got = model.generator(x, src, tgt, init)
    torch.testing.assert_close(got, expected)
    assert changed_mask(src, tgt, dilate).sum() > changed_mask(src, tgt).sum()
    # another init changes the output in the changed region only
    other = model.generate(target, init=np.full_like(made, 0.5))
    assert np.abs(other - model.generate(target)).max() > 0.01


def test_refine_keeps_the_identity_of_an_unchanged_layout():
    image, labels = _scene()
    for margin in (-1, 4):
        refine = _model(_plain(init="analogy", composite_margin=margin))
        fill = _model(_plain(init="fill", composite_margin=margin))
        # nothing changes: the init is not used, the output is G's reconstruction ...
        np.testing.assert_allclose(refine.generate(labels), fill.generate(labels), atol=1e-6)
    # ... and with compositing the source itself
    np.testing.assert_allclose(refine.generate(labels), image, atol=1e-6)


@pytest.mark.slow
def test_refine_identity_after_training(tmp_path):
    """A trained generator given an unchanged layout returns (nearly) the source, refine or not."""
    image, labels = _scene()
    small = TrainConfig(
        iters=60,
        crop_size=0,
        full_size_iters=0,
        rec_every=2,
        checkpoint_every=0,
        preview_every=0,
        generator=GeneratorConfig(base_channels=8, label_channels=8, max_label_channels=16),
        generate=_plain(init="analogy", composite_margin=-1),
    )
    model = SemIA.train(image, labels, tmp_path, small, seed=0)
    error = np.abs(model.generate(labels) - image).mean()
    untrained = np.abs(_model(_plain(composite_margin=-1)).generate(labels) - image).mean()
    assert error < 0.5 * untrained and error < 0.08, (error, untrained)


def test_generate_rejects_an_init_of_another_size():
    model = _model(_plain(init="analogy", composite_margin=-1))
    target = _edit(model.source_labels)
    with pytest.raises(ValueError, match="init must have the target's size"):
        model.generate(target, init=np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="init must be"):
        model.generator(
            image_to_tensor(model.source_image, "cpu"),
            one_hot(torch.from_numpy(model.source_labels)[None], 3),
            one_hot(torch.from_numpy(target)[None], 3),
            torch.zeros(1, 3, 8, 8),
        )


def test_seeds_outside_0_to_2_32_minus_1_are_refused(tmp_path):
    model = _model(_plain())
    for seed in (-1, 2**32):
        with pytest.raises(
            ValueError, match=f"seed must be a whole number in 0..4294967295, got {seed}"
        ):
            model.generate(_edit(model.source_labels), seed=seed)
        with pytest.raises(ValueError, match="seed must be"):
            SemIA.train(model.source_image, model.source_labels, tmp_path, seed=seed)
    assert not any(tmp_path.iterdir())  # refused before the model folder is touched


def test_model_file_stores_the_generate_settings(tmp_path):
    settings = GenerateConfig(init="fill", composite_margin=5, anchor_sigma=2.0)
    model = _model(settings)
    model.save(tmp_path)
    assert SemIA.load(tmp_path).config.generate == settings
    # a model file written before GenerateConfig existed loads with its defaults
    path = tmp_path / "model.safetensors"
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    config = json.loads(metadata["config"])
    del config["generate"]
    metadata["config"] = json.dumps(config)
    save_file(tensors, path, metadata)
    assert SemIA.load(tmp_path).config.generate == GenerateConfig()
    # a format-2 file (before the class band) generates as it did: G on every changed pixel
    metadata["version"] = "2"
    config["generate"] = {"init": "analogy", "anchor_sigma": 4.0}
    metadata["config"] = json.dumps(config)
    save_file(tensors, path, metadata)
    assert SemIA.load(tmp_path).config.generate == GenerateConfig(anchor_sigma=4.0, class_band=-1)


def test_class_band_keeps_g_only_where_the_new_regions_meet():
    """Class band 0 (1 px at 256 px rounds to 0 at 40 px), no margin: on the changed pixels,
    G's output stays only on pixels next to another class of the target. A removed object
    (the class-2 rectangle now background) has none: the analogy's pixels, with no trace of
    its outline. An added square keeps G on its rim and the analogy in its core."""
    labels = _scene()[1]
    target = _edit(labels)
    target[8:16, 3:12] = 0  # the rectangle removed
    model = _model(_plain(init="analogy", class_band=1, analogy_margin=0))
    made = analogy(model.source_image, model.labels, target, seed=0)
    out = model.generate(target, init=made)
    plain = _model(_plain(init="analogy")).generate(target, init=made)
    removed = np.zeros(labels.shape, bool)
    removed[8:16, 3:12] = True
    core = np.zeros(labels.shape, bool)
    core[21:25, 27:31] = True
    rim = (target == 2) & ~core & (labels != 2)
    np.testing.assert_allclose(out[removed | core], made[removed | core], atol=1e-6)
    np.testing.assert_array_equal(out[rim], plain[rim])
    unchanged = target == labels
    np.testing.assert_array_equal(out[unchanged], plain[unchanged])
    assert np.abs(plain[removed] - made[removed]).mean() > 0.02  # G alone repaints the hole
    wide = _model(_plain(init="analogy", class_band=20, analogy_margin=0))
    wide_out = wide.generate(target, init=made)
    np.testing.assert_array_equal(wide_out[core], plain[core])  # 20 -> 3 px: the core is near
    # analogy_margin 20 (3 px here): around the removed rectangle, whose outline G would
    # redraw, the analogy's pixels too; next to the added square's class boundary G's
    margin = _model(_plain(init="analogy", class_band=1, analogy_margin=20))
    margin_out = margin.generate(target, init=made)
    around = ~_far_from(removed, 3) & ~removed & (target == labels)
    np.testing.assert_allclose(margin_out[around], made[around], atol=1e-6)
    assert np.abs(plain[around] - made[around]).mean() > 0.02  # G alone repaints it
    np.testing.assert_array_equal(margin_out[rim], plain[rim])
    far = _far_from(target != labels, 3)
    np.testing.assert_array_equal(margin_out[far], plain[far])


def test_refine_band_keeps_the_analogy_deep_inside_the_change():
    model = _model(_plain(init="analogy", composite_margin=-1, refine_band=1))
    target = _edit(model.source_labels)
    made = analogy(model.source_image, model.labels, target, seed=0)
    out = model.generate(target, init=made)
    inside = _far_from(target == model.source_labels, 1)  # the 4x4 core of the 6x6 square
    assert inside.sum() == 16
    np.testing.assert_allclose(out[inside], made[inside], atol=1e-6)
    plain = _model(_plain(init="analogy", composite_margin=-1)).generate(target, init=made)
    np.testing.assert_array_equal(out[~inside], plain[~inside])
    assert np.abs(plain[inside] - made[inside]).mean() > 0.02  # G alone changes the core


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    from semia.ops import gaussian_blur

    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    return gaussian_blur(t, sigma)[0].numpy().transpose(1, 2, 0)


def test_anchor_takes_the_colours_from_the_analogy_and_the_detail_from_g():
    """An untrained G drifts in colour; anchored, its coarse part is the analogy's, its fine
    part its own."""
    target = _edit(_scene()[1])
    plain_model = _model(_plain(init="analogy"))
    made = analogy(plain_model.source_image, plain_model.labels, target, seed=0)
    plain = plain_model.generate(target, init=made)
    anchored = _model(_plain(init="analogy", anchor_sigma=4.0)).generate(target, init=made)
    sigma = 4.0 * max(target.shape) / 256
    drift_plain = np.abs(_blur(plain - made, 2 * sigma)).mean()
    drift_anchored = np.abs(_blur(anchored - made, 2 * sigma)).mean()
    assert drift_plain > 0.03 and drift_anchored < 0.25 * drift_plain, (drift_plain, drift_anchored)
    # the finest detail is still G's: anchored and plain differ only by a smooth field
    detail = (anchored - plain) - _blur(anchored - plain, 1.0)
    assert np.abs(detail).mean() < 0.2 * np.abs(plain - made).mean()


def test_keep_copied_outputs_the_source_where_the_analogy_copied_it():
    model = _model(_plain(init="analogy", keep_copied=True))
    image = model.source_image
    target = _edit(model.source_labels)
    made = analogy(image, model.labels, target, seed=0)
    copied = np.abs(made - image).max(2) < 0.5 / 255
    assert 0.3 < copied.mean() < 1.0
    out = model.generate(target, init=made)
    np.testing.assert_allclose(out[copied], image[copied], atol=1e-6)
    plain = _model(_plain(init="analogy")).generate(target, init=made)
    np.testing.assert_array_equal(out[~copied], plain[~copied])
    assert np.abs(plain[copied] - image[copied]).mean() > 0.02  # an untrained G alone does not
    # a target of another size has no pixel of the source's in place: nothing is kept
    small = target[:, :36]
    made = analogy(image, model.labels, small, seed=0)
    np.testing.assert_array_equal(
        model.generate(small, init=made), _model(_plain(init="analogy")).generate(small, init=made)
    )


def test_labels_and_edges_models_refine_the_analogy_of_target_and_sketch():
    from semia.gan.conditions import condition_channels, label_classes

    image, labels = _scene()
    config = TrainConfig(
        condition="labels+edges",
        generator=GeneratorConfig(base_channels=8, label_channels=8),
        generate=_plain(init="analogy"),
    )
    torch.manual_seed(0)
    k = len(PALETTE)
    generator = Generator(
        condition_channels("labels+edges", k), config.generator, label_classes("labels+edges", k)
    )
    model = SemIA(generator, image, labels, PALETTE, config)
    target = _edit(labels)
    sketch = np.ones(labels.shape, np.float32)
    sketch[18:28, 24] = sketch[18:28, 33] = 0.0  # the new square's outline, roughly
    made = analogy(
        image, model.labels, target, sketch=sketch, seed=0, config=PatchConfig().for_refinement()
    )
    out = model.generate(target, sketch=sketch)
    np.testing.assert_array_equal(out, model.generate(target, init=made, sketch=sketch))
    other = model.generate(target, init=np.full_like(made, 0.5), sketch=sketch)
    assert np.abs(other - out).max() > 0.01  # the init is used
