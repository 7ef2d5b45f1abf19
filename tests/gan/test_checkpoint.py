"""Tests of semia.checkpoint: atomic writes, config JSON, optimiser flattening, model files."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace

import numpy as np
import pytest
import torch

from semia.config import AugmentConfig, GeneratorConfig, LossWeights, TrainConfig
from semia.gan import checkpoint as ckpt


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    ckpt.atomic_write_bytes(path, b"one")
    ckpt.atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]


def test_atomic_writes_get_the_permissions_of_a_new_file(tmp_path):
    from semia.io import write_image

    umask = os.umask(0o022)
    try:
        ckpt.atomic_write_text(tmp_path / "a.json", "{}")
        write_image(tmp_path / "b.png", np.zeros((4, 4, 3), np.float32))
    finally:
        os.umask(umask)
    for name in ("a.json", "b.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_config_roundtrip_through_json():
    config = TrainConfig(
        iters=7,
        adam_betas=(0.5, 0.99),
        generator=GeneratorConfig(base_channels=8),
        augment=AugmentConfig(ramp_iters=3),
        loss_weights=LossWeights(gan=0.0, patch_coherence=2.5),
    )
    data = json.loads(json.dumps(ckpt.config_to_dict(config)))
    assert ckpt.config_from_dict(data) == config


def test_config_from_dict_defaults_missing_and_ignores_unknown_fields():
    data = {"iters": 5, "from_the_future": 1, "loss_weights": {"gan": 0.5}}
    config = ckpt.config_from_dict(data)
    assert config == replace(TrainConfig(iters=5), loss_weights=LossWeights(gan=0.5))


def test_models_stored_before_the_fill_options_load_without_them():
    # a format-1 file whose generator config lacks a field was written before it existed: the
    # old behaviour ("off", anchors anywhere, no dilation), not today's default
    stored = ckpt.config_to_dict(TrainConfig())
    for key in ("fill_changed", "fill_margin", "fill_dilate"):
        del stored["generator"][key]
    assert ckpt.config_from_dict(stored, version=2) == TrainConfig()  # today's files: defaults
    config = ckpt.config_from_dict(json.loads(json.dumps(stored)), version=1)
    new = TrainConfig().generator
    assert (new.fill_changed, new.fill_margin, new.fill_dilate) == ("analogy", 2, 2)
    old = config.generator
    assert (old.fill_changed, old.fill_margin, old.fill_dilate) == ("off", -1, 0)
    assert replace(old, fill_changed="analogy", fill_margin=2, fill_dilate=2) == new


def _stepped_adam(seed: int) -> tuple[torch.nn.Module, torch.optim.Adam]:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.0, 0.9))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    return net, opt


def test_optimizer_state_roundtrip_continues_identically():
    net, opt = _stepped_adam(0)
    tensors, meta = ckpt.optimizer_state_to_flat(opt, "opt.G")
    assert all(k.startswith("opt.G.state.") for k in tensors)
    meta = json.loads(json.dumps(meta))  # must be JSON-clean
    assert meta["state"]["0"]["step"] == 3

    net2, _ = _stepped_adam(1)
    net2.load_state_dict(net.state_dict())
    opt2 = torch.optim.Adam(net2.parameters(), lr=1.0)
    ckpt.optimizer_state_from_flat(opt2, tensors, meta, "opt.G")
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.0, 0.9)

    x = torch.randn(5, 4)
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).pow(2).sum().backward()
        o.step()
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)


def _model_file() -> ckpt.ModelFile:
    rng = np.random.default_rng(0)
    return ckpt.ModelFile(
        generator_state={"w": torch.randn(3, 4), "b": torch.zeros(2, dtype=torch.int64)},
        source_image=rng.random((9, 11, 3), dtype=np.float32),
        source_labels=rng.integers(0, 3, (9, 11)),
        palette=np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8),
        config=TrainConfig(iters=3),
    )


def test_model_file_roundtrip(tmp_path):
    model = _model_file()
    ckpt.save_model(tmp_path / ckpt.MODEL_FILE, model)
    for path in (tmp_path, tmp_path / ckpt.MODEL_FILE):
        back = ckpt.load_model(path)
        assert back.config == model.config
        np.testing.assert_array_equal(back.source_image, model.source_image)
        np.testing.assert_array_equal(back.source_labels, model.source_labels)
        np.testing.assert_array_equal(back.palette, model.palette)
        assert back.source_labels.dtype == np.int64 and back.palette.dtype == np.uint8
        assert back.generator_state.keys() == model.generator_state.keys()
        for k, v in model.generator_state.items():
            assert torch.equal(back.generator_state[k], v)


def test_the_step_trained_is_stored_and_an_early_stop_gets_a_note(tmp_path):
    model = _model_file()  # iters=3
    path = tmp_path / ckpt.MODEL_FILE
    ckpt.save_model(path, model)  # step not recorded (a file of an older semia): finished
    back = ckpt.load_model(path)
    assert (back.step, back.interrupted) == (None, False)
    assert ckpt.unfinished_note(path, back) is None
    ckpt.save_model(path, replace(model, step=3))
    assert ckpt.unfinished_note(path, ckpt.load_model(path)) is None
    ckpt.save_model(path, replace(model, step=2, interrupted=True))
    back = ckpt.load_model(path)
    assert (back.step, back.interrupted) == (2, True)
    assert ckpt.unfinished_note(path, back) == (
        f"model {path}: training stopped at step 2 of 3 (interrupted); its training state is "
        "not beside it: train it again for the full result"
    )
    ckpt.save_train_state(tmp_path, {"x": torch.zeros(1)}, {"step": 2})
    assert f"resume it with `semia train --resume --out {tmp_path}`" in ckpt.unfinished_note(
        path, back
    )
    ckpt.save_model(path, replace(model, step=1))  # a killed run's checkpoint
    assert "at step 1 of 3 (the run did not finish" in ckpt.unfinished_note(
        path, ckpt.load_model(path)
    )


def test_load_model_errors(tmp_path):
    with pytest.raises(ValueError, match="no SemIA model"):
        ckpt.load_model(tmp_path)
    (tmp_path / ckpt.MODEL_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        ckpt.load_model(tmp_path)
    ckpt._save_safetensors(tmp_path / ckpt.MODEL_FILE, {"x": torch.zeros(1)}, {"format": "other"})
    with pytest.raises(ValueError, match="not a SemIA model"):
        ckpt.load_model(tmp_path)


def test_train_state_roundtrip_and_mismatch(tmp_path):
    tensors = {"G.w": torch.arange(6.0).view(2, 3), "rng.train": torch.arange(5, dtype=torch.uint8)}
    meta_in = {"step": 4, "config": {}, "optimizers": {}, "extra": [1, 2]}
    ckpt.save_train_state(tmp_path, tensors, meta_in)
    back, meta = ckpt.load_train_state(tmp_path)
    assert meta["step"] == 4 and meta["extra"] == [1, 2]
    assert torch.equal(back["G.w"], tensors["G.w"]) and torch.equal(
        back["rng.train"], tensors["rng.train"]
    )

    # a JSON from another save (a kill between the two writes) is detected
    saved_json = (tmp_path / ckpt.STATE_JSON).read_text()
    ckpt.save_train_state(tmp_path, tensors, {**meta_in, "step": 5})
    (tmp_path / ckpt.STATE_JSON).write_text(saved_json)
    with pytest.raises(ValueError, match="different checkpoints"):
        ckpt.load_train_state(tmp_path)
    with pytest.raises(ValueError, match="no training state"):
        ckpt.load_train_state(tmp_path / "missing")


def _saved_model(tmp_path):
    """A tiny untrained SemIA saved to tmp_path / "model": its tensors and metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from semia.gan import SemIA
    from semia.gan.networks import Generator

    config = TrainConfig(generator=GeneratorConfig(base_channels=8, label_channels=8))
    rng = np.random.default_rng(0)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    model = SemIA(
        Generator(len(palette), config.generator),
        rng.random((16, 16, 3), dtype=np.float32),
        rng.integers(0, 3, (16, 16)),
        palette,
        config,
    )
    model.save(tmp_path / "model")
    path = tmp_path / "model" / ckpt.MODEL_FILE
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    return path, load_file(path), metadata


def test_a_model_without_its_generator_weights_is_a_one_line_error(tmp_path):
    from safetensors.torch import save_file

    from semia.errors import InputError
    from semia.gan import SemIA

    path, tensors, metadata = _saved_model(tmp_path)
    weights = [k for k in tensors if k.startswith("G.")]
    save_file({k: v for k, v in tensors.items() if k not in weights}, path, metadata=metadata)
    with pytest.raises(InputError) as error:
        SemIA.load(path.parent)
    message = str(error.value)
    assert "\n" not in message and len(message) < 400, message
    assert f"{len(weights)} of the {len(weights)} generator weights are missing" in message
    assert str(path) in message and "not a complete semia model" in message
    assert sum(w in message for w in weights) == 3 and ", ...)" in message


def test_generator_weights_of_another_shape_or_name_are_named(tmp_path):
    from safetensors.torch import save_file

    from semia.errors import InputError
    from semia.gan import SemIA

    path, tensors, metadata = _saved_model(tmp_path)
    name = next(k for k in tensors if k.startswith("G.") and tensors[k].ndim == 4)
    tensors[name] = torch.zeros(1, 1, 1, 1)
    tensors["G.extra.weight"] = torch.zeros(2)
    save_file(tensors, path, metadata=metadata)
    with pytest.raises(InputError) as error:
        SemIA.load(path.parent)
    message = str(error.value)
    assert "\n" not in message, message
    assert f"1 unknown (G.extra.weight); 1 of another shape ({name})" in message
