"""Tests of semia.train: schedule, gradient flow, determinism, resume, outputs, a real short fit."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from semia.config import (
    AugmentConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    LossWeights,
    SegmenterConfig,
    TrainConfig,
)
from semia.gan import SemIA
from semia.gan import checkpoint as ckpt
from semia.gan.steps import lr_factor, random_crop, setup_run, train_iteration
from semia.gan.tensors import image_to_tensor, one_hot
from semia.gan.trainer import read_log
from semia.io import LabelMap, read_label_map, read_target

PALETTE = np.array([[40, 40, 40], [200, 30, 30], [30, 30, 200]], np.uint8)


pytestmark = pytest.mark.usefixtures("one_thread")


def _scene(h: int = 30, w: int = 38) -> tuple[np.ndarray, np.ndarray]:
    """A small textured 3-class scene: (H, W, 3) float32 image, (H, W) int64 labels."""
    yy, xx = np.mgrid[0:h, 0:w]
    labels = np.zeros((h, w), np.int64)
    labels[:, w // 2 :] = 1
    labels[(yy - h // 2) ** 2 + (xx - w // 4) ** 2 < (h // 5) ** 2] = 2
    stripes = 0.15 * np.sin(xx * 1.3 + yy * 0.4)[..., None]
    image = PALETTE[labels] / 255.0 * 0.7 + 0.15 + stripes * (labels == 1)[..., None]
    return np.clip(image, 0, 1).astype(np.float32), labels


def train(image, labels, palette, out_dir, config=TrainConfig(), **kw) -> SemIA:
    """SemIA.train on a bare id map with an explicit palette."""
    return SemIA.train(image, LabelMap(np.asarray(labels), palette), out_dir, config, **kw)


def _config(iters: int, **kw) -> TrainConfig:
    small = dict(
        generator=GeneratorConfig(
            base_channels=8, label_channels=8, max_label_channels=16, norm="pixel"
        ),
        discriminator=DiscriminatorConfig(base_channels=8, pyramid_channels=16),
        segmenter=SegmenterConfig(base_channels=8, aspp_channels=8),
        augment=AugmentConfig(ramp_iters=4),
    )
    base = dict(iters=iters, crop_size=24, full_size_iters=2, checkpoint_every=4, preview_every=4)
    return TrainConfig(**{**small, **base, **kw})


def _weights(model: SemIA | torch.nn.Module) -> dict[str, torch.Tensor]:
    net = model.generator if isinstance(model, SemIA) else model
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_lr_factor_constant_then_linear_decay():
    config = TrainConfig(iters=100, decay_start=0.4)
    assert [lr_factor(s, config) for s in (0, 39, 40)] == [1.0, 1.0, 1.0]
    assert lr_factor(70, config) == pytest.approx(0.5)
    assert lr_factor(100, config) == 0.0


def test_random_crop_is_aligned():
    image, labels = _scene()
    t = image_to_tensor(image, "cpu")
    ids = torch.from_numpy(labels)[None]
    coded = t.clone()
    coded[:, 0] = ids.float()  # channel 0 carries the label: alignment is checkable
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        crop, crop_ids = random_crop(coded, ids, 16, gen)
        assert crop.shape[-2:] == (16, 16) and crop_ids.shape == (1, 16, 16)
        assert torch.equal(crop[:, 0].long(), crop_ids)
    whole, whole_ids = random_crop(coded, ids, 100, gen)
    assert whole.shape[-2:] == (30, 38) and torch.equal(whole_ids, ids)


def test_every_parameter_is_trained(tmp_path):
    """A sample step updates every G and D parameter, a segmenter step every S parameter."""
    image, labels = _scene()
    config = _config(10, crop_size=0, rec_every=5, swap_prob=0.0)
    run = setup_run(image, labels, 3, tmp_path, config, device=torch.device("cpu"), seed=0)
    train_iteration(run, 0)  # reconstruction step: leaves the SFT at identity, trains the rest
    before = {n: _weights(m) for n, m in run.nets.named_modules().items()}
    record = train_iteration(run, 1)  # sample step (augmentation strength 1/4)
    assert record["kind"] == "sample"
    for key in ("g_gan", "feature_matching", "alignment", "patch", "d_loss", "seg"):
        assert np.isfinite(record[key])
    for name, module in run.nets.named_modules().items():
        for pname, p in module.named_parameters():
            assert torch.isfinite(p).all(), f"{name}.{pname} is not finite"
            assert not torch.equal(p, before[name][pname]), f"{name}.{pname} was not updated"


def test_reconstruction_step_logs_its_losses(tmp_path):
    image, labels = _scene()
    run = setup_run(image, labels, 3, tmp_path, _config(5), device=torch.device("cpu"), seed=0)
    record = train_iteration(run, 0)
    assert record["kind"] == "rec" and record["size"] == [24, 24]
    assert record["rec_l1"] > 0 and record["fixed_point"] == 0.0  # identity SFT when P == P
    assert set(record["seconds"]) >= {"augment", "g_forward", "backward", "optim", "total"}


def test_switched_off_losses_are_not_computed(tmp_path):
    image, labels = _scene()
    weights = LossWeights(gan=0.0, feature_matching=0.0, patch_coherence=0.0)
    run = setup_run(
        image, labels, 3, tmp_path, _config(5, loss_weights=weights), device="cpu", seed=0
    )
    record = train_iteration(run, 1)
    assert "alignment" in record
    assert not {"g_gan", "feature_matching", "patch", "d_loss"} & set(record)
    assert "d_forward" not in record["seconds"]


def test_training_is_deterministic_under_a_seed(tmp_path):
    image, labels = _scene()
    config = _config(6)
    a = train(image, labels, PALETTE, tmp_path / "a", config, seed=5)
    b = train(image, labels, PALETTE, tmp_path / "b", config, seed=5)
    c = train(image, labels, PALETTE, tmp_path / "c", config, seed=6)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_resume_continues_step_count_and_optimiser_state(tmp_path, caplog):
    image, labels = _scene()
    config = _config(10)
    target = np.roll(labels, 6, axis=1)
    full = train(image, labels, PALETTE, tmp_path / "full", config, seed=1)

    def stop_at_7(step, total, losses):
        assert total == 10 and ("rec_l1" in losses or "g_gan" in losses)
        if step == 7:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train(image, labels, PALETTE, out, config, seed=1, progress=stop_at_7)
    meta = json.loads((out / ckpt.STATE_JSON).read_text())
    assert meta["step"] == 7
    g_updates = meta["optimizers"]["G"]["state"]["0"]["step"]
    assert g_updates == 7  # one G update per iteration (g_steps=1)

    with pytest.raises(ValueError, match="already holds a training run"):
        train(image, labels, PALETTE, out, config, seed=1)
    with pytest.raises(ValueError, match=r"lr was 0\.002, now 0\.0001"):
        train(image, labels, PALETTE, out, replace(config, lr=1e-4), seed=1, resume=True)
    with pytest.raises(ValueError, match=r"\(seed was 1, now 5\)"):
        train(image, labels, PALETTE, out, config, seed=5, resume=True)
    # an interrupted run leaves a loadable model too (Ctrl-C before the first checkpoint), and
    # loading it says that its training did not finish
    caplog.clear()
    stopped = SemIA.load(out)
    assert (stopped.step, stopped.interrupted) == (7, True)
    notes = [r.getMessage() for r in caplog.records if "training stopped" in r.getMessage()]
    assert notes == [
        f"model {out / ckpt.MODEL_FILE}: training stopped at step 7 of 10 (interrupted); resume "
        f"it with `semia train --resume --out {out}` and the flags it was started with for the "
        "full result"
    ]
    assert stopped.generate(labels).shape == image.shape
    with pytest.raises(ValueError, match="another image"):
        train(image * 0.5, labels, PALETTE, out, config, seed=1, resume=True)

    steps_seen = []
    resumed = train(
        image,
        labels,
        PALETTE,
        out,
        config,
        seed=1,
        resume=True,
        progress=lambda s, n, losses: steps_seen.append(s),
    )
    assert steps_seen == [8, 9, 10]
    assert [r["step"] for r in read_log(out)] == list(range(1, 11))
    np.testing.assert_array_equal(resumed.generate(target), full.generate(target))
    meta = json.loads((out / ckpt.STATE_JSON).read_text())
    assert meta["step"] == 10 and meta["optimizers"]["G"]["state"]["0"]["step"] == 10
    caplog.clear()
    finished = SemIA.load(out)
    assert (finished.step, finished.interrupted, resumed.step) == (10, False, 10)
    assert not [r for r in caplog.records if "training stopped" in r.getMessage()]


def test_outputs_written(tmp_path):
    image, labels = _scene()
    targets = [np.roll(labels, 5, axis=1), labels[:21, :27]]
    model = train(image, labels, PALETTE, tmp_path, _config(8), preview_targets=targets)
    assert isinstance(model, SemIA) and not model.generator.training
    names = {p.name for p in tmp_path.iterdir()}
    assert {"model.safetensors", "train_state.safetensors", "train_state.json"} <= names
    assert {"log.jsonl", "loss.png", "previews"} <= names
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == [
        "step_00004.png",
        "step_00008.png",
    ]
    sheet = np.asarray(Image.open(tmp_path / "previews" / "step_00008.png"))
    assert sheet.shape[0] >= 30 + 30 + 21 and sheet.shape[1] >= 2 * 38
    assert Image.open(tmp_path / "loss.png").size[0] > 100
    loaded = SemIA.load(tmp_path)
    np.testing.assert_array_equal(loaded.generate(targets[1]), model.generate(targets[1]))


def test_bad_inputs_raise(tmp_path):
    image, labels = _scene()
    config = _config(2)
    with pytest.raises(ValueError, match="same size"):
        train(image[:, :-1], labels, PALETTE, tmp_path, config)
    with pytest.raises(ValueError, match="only 3 classes"):
        train(image, labels + 1, PALETTE, tmp_path, config)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train(image * 2, labels, PALETTE, tmp_path, config)
    with pytest.raises(ValueError, match="preview target 0"):
        train(image, labels, PALETTE, tmp_path, config, preview_targets=[labels * 5])


def _reconstruction_error(model_or_generator, image: np.ndarray, labels: np.ndarray) -> float:
    gen = model_or_generator
    x = image_to_tensor(image, "cpu")
    oh = one_hot(torch.from_numpy(labels)[None], 3)
    with torch.no_grad():
        gen.eval()
        return float((gen(x, oh, oh) - x).abs().mean())


def test_short_training_lowers_reconstruction_error(tmp_path):
    image, labels = _scene(32, 40)
    config = _config(60, crop_size=0, full_size_iters=0, rec_every=2, checkpoint_every=0)
    run = setup_run(image, labels, 3, tmp_path, config, device=torch.device("cpu"), seed=0)
    before = _reconstruction_error(run.nets.G, image, labels)
    model = train(image, labels, PALETTE, tmp_path / "m", config, seed=0)
    after = _reconstruction_error(model.generator, image, labels)
    assert after < 0.5 * before, (before, after)


def test_original_schedule_preset_runs_its_step_counts(tmp_path):
    original = TrainConfig.original()
    counts = (original.iters, original.g_steps, original.d_steps, original.rec_every)
    assert counts == (2500, 10, 2, 5)
    assert original.lr == 0.01 and original.augment.ramp_iters == 1000 and original.crop_size == 0
    assert original.augment.paste_prob == 0.0 and original.generator.fill_changed == "off"
    assert original.loss_weights.semantic_alignment == 1.0
    image, labels = _scene()
    small = _config(4)
    config = replace(
        original, generator=small.generator, discriminator=small.discriminator,
        segmenter=small.segmenter,
    )  # fmt: skip
    run = setup_run(image, labels, 3, tmp_path, config, device="cpu", seed=0)
    assert train_iteration(run, 1)["kind"] == "sample"
    g_state = run.nets.opt_g.state_dict()["state"][0]
    d_state = run.nets.opt_d.state_dict()["state"][0]
    assert int(g_state["step"]) == 10 and int(d_state["step"]) == 2
    assert "s_step" not in train_iteration(run, 2)["seconds"]  # S trains on rec iterations only


@pytest.mark.parametrize("kind", ["palette", "ids"])
def test_label_kind_survives_training_from_python_and_every_checkpoint(tmp_path, kind):
    """A model trained from Python on an id-coded map reads its targets as ids, and so does
    a checkpoint written mid-training."""
    image, labels = _scene()
    path = tmp_path / "labels.png"
    if kind == "palette":
        im = Image.fromarray(labels.astype(np.uint8), "P")
        im.putpalette(PALETTE.ravel().tolist())
    else:
        im = Image.fromarray((labels * 20 + 3).astype(np.uint8), "L")
    im.save(path)
    source = read_label_map(path)
    assert source.kind == kind
    stop = {"at": 4}

    def interrupt(step, total, losses):
        if step == stop["at"]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a checkpoint of an unfinished run
        SemIA.train(image, source, tmp_path / "m", _config(8), progress=interrupt)
    SemIA.train(image, source, tmp_path / "done", _config(4))
    im.save(tmp_path / "target.png")
    for folder in ("m", "done"):
        model = SemIA.load(tmp_path / folder)
        assert model.label_kind == kind and model.label_values == source.values
        target = read_target(tmp_path / "target.png", model.labels)
        np.testing.assert_array_equal(target.ids, labels)


def test_resume_with_more_iterations_follows_the_new_schedule(tmp_path):
    image, labels = _scene()
    train(image, labels, PALETTE, tmp_path, _config(4), seed=2)
    resumed = train(image, labels, PALETTE, tmp_path, _config(6), seed=2, resume=True)
    records = read_log(tmp_path)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert resumed.config.iters == 6
    # the learning-rate decay is computed from the new total: step 5 of 6 is not at lr 0
    assert records[-1]["lr_factor"] == pytest.approx(lr_factor(5, _config(6)), abs=1e-5)
    assert records[-1]["lr_factor"] > 0


def test_analogy_fill_feeds_g_the_training_free_result_of_its_own_pair(tmp_path):
    """fill_changed "analogy": a sample step's G gets the analogy of the pair it is given (the
    input generation gives it), whose changed pixels carry the target class's colours; None
    (G's own block fill) for an unchanged pair, a class the source lacks, or other fills."""
    from semia.gan.steps import _analogy_init

    image, labels = _scene()
    gen = replace(_config(4).generator, fill_changed="analogy")
    config = _config(20, crop_size=0, rec_every=0, swap_prob=0.0, generator=gen)
    run = setup_run(image, labels, 3, tmp_path, config, device=torch.device("cpu"), seed=0)
    seen = []
    forward = run.nets.G.forward

    def spy(img, source, target, init=None):
        seen.append((source.argmax(1), target.argmax(1), init))
        return forward(img, source, target, init)

    run.nets.G.forward = spy
    for step in range(6):
        train_iteration(run, step)
    src_t = image_to_tensor(image, "cpu")
    means = torch.stack([src_t[0][:, torch.from_numpy(labels) == c].mean(1) for c in range(3)])
    checked = 0
    for src_ids, tgt_ids, init in seen:
        changed = src_ids[0] != tgt_ids[0]
        if not changed.any():
            assert init is None
            continue
        assert init is not None and init.shape == (1, 3, *tgt_ids.shape[-2:])
        assert init.min() >= -1 and init.max() <= 1
        pixels = init[0][:, changed].T  # (n, 3) the changed pixels' colours
        nearest = torch.cdist(pixels, means).argmin(1)
        assert (nearest == tgt_ids[0][changed]).float().mean() > 0.95
        checked += 1
    assert checked >= 3

    ids = torch.from_numpy(labels)[None]
    other = ids.clone()
    other[0, :5, :5] = 2
    no_two = torch.where(ids == 2, 0, ids)
    assert _analogy_init(run, src_t, ids, ids) is None  # nothing changes
    assert _analogy_init(run, src_t, no_two, other) is None  # class 2 is not in the source
    sample = _config(4, generator=replace(gen, fill_changed="sample"))
    plain = setup_run(image, labels, 3, tmp_path, sample, device="cpu", seed=0)
    assert _analogy_init(plain, src_t, ids, other) is None  # the "sample" fill
    made = _analogy_init(run, src_t, ids, other)
    assert made is not None  # away from the change, the analogy copies the source in place
    torch.testing.assert_close(made[0][:, 10:, 10:], src_t[0][:, 10:, 10:], atol=1e-5, rtol=0)
