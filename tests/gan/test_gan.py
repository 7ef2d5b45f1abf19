"""Tests of semia.gan: the SemIA class (generate, save/load, input validation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semia.config import GeneratorConfig, TrainConfig
from semia.gan import SemIA
from semia.gan.networks import Generator
from semia.gan.tensors import image_to_tensor, one_hot, tensor_to_image

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)


pytestmark = pytest.mark.usefixtures("one_thread")


def _scene(h: int = 27, w: int = 35) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((h, w), np.int64)
    labels[:, w // 2 :] = 1
    labels[h // 4 : h // 2, 3:12] = 2
    rng = np.random.default_rng(0)
    image = PALETTE[labels] / 255.0 * 0.7 + 0.1 + rng.uniform(0, 0.2, (h, w, 3))
    return image.astype(np.float32), labels


@pytest.fixture(scope="module")
def model() -> SemIA:
    image, labels = _scene()
    config = TrainConfig(generator=GeneratorConfig(base_channels=8, label_channels=8))
    torch.manual_seed(0)
    generator = Generator(len(PALETTE), config.generator)
    return SemIA(generator, image, labels, PALETTE, config)


def test_tensor_conversions_roundtrip():
    image, labels = _scene()
    t = image_to_tensor(image, "cpu")
    assert t.shape == (1, 3, 27, 35) and t.min() >= -1.0 and t.max() <= 1.0
    np.testing.assert_allclose(tensor_to_image(t), image, atol=1e-6)
    oh = one_hot(torch.from_numpy(labels)[None], 3)
    assert oh.shape == (1, 3, 27, 35) and torch.equal(oh.argmax(1)[0], torch.from_numpy(labels))


@pytest.mark.parametrize("size", [(27, 35), (19, 41), (40, 24)])
def test_generate_shapes_and_range(model, size):
    target = np.zeros(size, np.int64)
    target[:, : size[1] // 3] = 1
    target[size[0] // 2 :, -5:] = 2
    out = model.generate(target)
    assert out.shape == (*size, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and np.isfinite(out).all()


def test_generate_is_deterministic(model):
    target = np.roll(model.source_labels, 5, axis=1)
    np.testing.assert_array_equal(model.generate(target), model.generate(target))


def test_save_load_gives_identical_output(model, tmp_path):
    model.save(tmp_path)
    loaded = SemIA.load(tmp_path)
    assert loaded.num_classes == 3 and loaded.config == model.config
    np.testing.assert_array_equal(loaded.palette, PALETTE)
    np.testing.assert_array_equal(loaded.source_labels, model.source_labels)
    target = np.roll(model.source_labels, -4, axis=0)[:25, :33]
    np.testing.assert_array_equal(loaded.generate(target), model.generate(target))
    same = SemIA.load(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(same.generate(target), model.generate(target))


def test_generate_rejects_bad_targets(model):
    with pytest.raises(ValueError, match="only 3 classes"):
        model.generate(np.full((20, 20), 3, np.int64))
    with pytest.raises(ValueError, match="negative ids"):
        model.generate(np.full((20, 20), -1, np.int64))
    with pytest.raises(ValueError, match=r"\(H, W\) array of class ids"):
        model.generate(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ValueError, match="integer class ids"):
        model.generate(np.zeros((20, 20), np.float32))
    with pytest.raises(ValueError, match="at least 8x8"):
        model.generate(np.zeros((4, 20), np.int64))


def test_load_rejects_missing_and_mismatched_models(model, tmp_path):
    with pytest.raises(ValueError, match="no SemIA model"):
        SemIA.load(tmp_path / "nothing")
    other = SemIA(
        Generator(3, GeneratorConfig(base_channels=4, label_channels=4)),
        model.source_image,
        model.source_labels,
        PALETTE,
        model.config,  # claims base_channels=8: the stored weights do not fit
    )
    other.save(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match=r"weights do not fit .* generator \(62 of another shape"):
        SemIA.load(tmp_path / "bad.safetensors")
