"""The CUDA path: the analogy, the GAN (train, checkpoint, resume, generate) and the CLI on a GPU.

Skipped where torch sees no CUDA device (CI has none). On a GPU machine:
`python -m pytest tests/test_cuda.py -v`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

import semia
from semia.cli import main as cli_main
from semia.config import (
    AugmentConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    PatchConfig,
    SegmenterConfig,
    TrainConfig,
)
from semia.eval.patch_stats import patch_swd
from semia.gan import SemIA
from semia.gan import checkpoint as ckpt
from semia.gan.trainer import read_log
from semia.io import read_image

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")

TREE = Path(str(resources.files("semia") / "examples" / "tree"))


@pytest.fixture(scope="module")
def tree():
    """The packaged tree scene at 128 px and its first edited target."""
    image, labels = semia.load_scene(TREE / "img.png", TREE / "label.png", max_size=128)
    target = semia.read_target(sorted((TREE / "cond").glob("*.png"))[0], labels)
    assert (target.ids != labels.ids).mean() > 0.02  # a real edit
    return image, labels, target


def _swd(out: np.ndarray, image: np.ndarray) -> float:
    return patch_swd(torch.from_numpy(out), torch.from_numpy(image))


def test_analogy_on_cuda_keeps_an_unchanged_layout_exactly(tree):
    image, labels, _ = tree
    out = semia.analogy(image, labels, labels, seed=3, device="cuda")
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_analogy_on_cuda_is_as_good_as_on_the_cpu_and_repeatable(tree):
    image, labels, target = tree
    cpu = semia.analogy(image, labels, target, seed=0, device="cpu")
    gpu = semia.analogy(image, labels, target, seed=0, device="cuda")
    again = semia.analogy(image, labels, target, seed=0, device="cuda")
    other = semia.analogy(image, labels, target, seed=1, device="cuda")
    assert gpu.shape == cpu.shape == image.shape and gpu.dtype == np.float32
    assert np.isfinite(gpu).all() and gpu.min() >= 0 and gpu.max() <= 1
    # same seed, same device: the same result (scatter-adds may reorder float sums: allow
    # a few pixels off by more than one grey level, no more)
    assert (np.abs(gpu - again).max(axis=-1) > 1 / 255).mean() < 0.005
    # kept pixels stay the source's (those near the edit are re-synthesized) on both devices
    kept = target.ids == labels.ids
    assert np.median(np.abs(gpu - image).max(axis=-1)[kept]) < 1 / 255
    assert np.abs(gpu - image)[kept].mean() < 1.5 * np.abs(cpu - image)[kept].mean() + 0.005
    # the random streams differ by device, the quality must not: the patch SWD to the source
    s_cpu, s_gpu = _swd(cpu, image), _swd(gpu, image)
    print(f"patch SWD to the source: cpu {s_cpu:.5f}, cuda {s_gpu:.5f}")
    assert s_gpu < 1.3 * s_cpu
    # seeds still vary the edited region on CUDA
    changed = ~kept
    assert np.abs(other - gpu)[changed].mean() > 0.005  # 0.0093 on an H200, 0.0106 on the CPU


def test_rim_shade_on_cuda_matches_the_cpu(tree):
    """The rim shade correction (tensor ops only; on by default) on CUDA: the packaged tree's second
    tree (target 4), whose halo it lightens, as good as on the CPU."""
    image, labels, _ = tree
    target = semia.read_target(TREE / "cond" / "4.png", labels)
    config = PatchConfig(rim_shade=True)
    cpu = semia.analogy(image, labels, target, seed=0, config=config, device="cpu")
    gpu = semia.analogy(image, labels, target, seed=0, config=config, device="cuda")
    assert gpu.shape == cpu.shape and np.isfinite(gpu).all()
    assert _swd(gpu, image) < 1.3 * _swd(cpu, image)
    kept = target.ids == labels.ids
    assert np.median(np.abs(gpu - image).max(axis=-1)[kept]) < 1 / 255


def _tiny_config(iters: int, **kw) -> TrainConfig:
    small = dict(
        generator=GeneratorConfig(base_channels=8, label_channels=8, max_label_channels=16),
        discriminator=DiscriminatorConfig(base_channels=8, pyramid_channels=16),
        segmenter=SegmenterConfig(base_channels=8, aspp_channels=8),
        augment=AugmentConfig(ramp_iters=4),
    )
    base = dict(iters=iters, crop_size=48, full_size_iters=2, checkpoint_every=4, preview_every=0)
    return TrainConfig(**{**small, **base, **kw})


def test_gan_trains_on_cuda_and_its_checkpoint_loads_on_the_cpu(tree, tmp_path):
    image, labels, target = tree
    model = SemIA.train(image, labels, tmp_path, _tiny_config(8), device="cuda", seed=0)
    assert model.device.type == "cuda"
    records = read_log(tmp_path)
    assert [r["step"] for r in records] == list(range(1, 9))
    assert all(np.isfinite(r.get("rec_l1", r.get("g_gan", 0.0))) for r in records)
    # the files hold CPU tensors: a CPU-only machine loads them
    state = json.loads((tmp_path / ckpt.STATE_JSON).read_text())
    assert state["step"] == 8
    on_cpu = SemIA.load(tmp_path, device="cpu")
    on_gpu = SemIA.load(tmp_path, device="cuda")
    assert on_cpu.device.type == "cpu" and on_gpu.device.type == "cuda"
    for (name, a), (_, b) in zip(
        model.generator.state_dict().items(), on_cpu.generator.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a.cpu(), b, msg=name)
    # one generator pass on a fixed input: the same on both devices up to float rounding
    init = semia.analogy(image, labels, target, seed=0)
    out_cpu = on_cpu.generate(target, init=init)
    out_gpu = on_gpu.generate(target, init=init)
    assert out_gpu.shape == image.shape and np.isfinite(out_gpu).all()
    np.testing.assert_allclose(out_gpu, out_cpu, atol=2e-3)
    # the default generation (analogy on the model's device + G) runs on CUDA
    default = on_gpu.generate(target, seed=0)
    assert default.shape == image.shape and default.min() >= 0 and default.max() <= 1


def _main_loss(records: list[dict]) -> np.ndarray:
    return np.array([r.get("rec_l1", r.get("g_gan")) for r in records])


def _max_weight_difference(a: SemIA, b: SemIA) -> float:
    pairs = zip(a.generator.state_dict().values(), b.generator.state_dict().values(), strict=True)
    return max((x - y).abs().max().item() for x, y in pairs if x.is_floating_point())


def test_gan_resumes_on_cuda_where_it_stopped(tree, tmp_path):
    """A run stopped at iteration 5 and resumed draws the same crops, augmentations and pastes
    as an uninterrupted one: its losses follow the uninterrupted run's up to CUDA's float-sum
    order (atomic adds in backward passes make two identical runs differ), while a run of
    another seed (other draws) departs from them. Measured on an H200 (torch 2.11): relative
    loss gap after the restart 0.0026 for a second identical run, 0.022 resumed, 0.13 for
    another seed; largest weight difference 5.9e-3 (identical run), 7.4e-3 (resumed). On the
    CPU the first two are exactly 0."""
    image, labels, _ = tree
    config = _tiny_config(8)
    full = SemIA.train(image, labels, tmp_path / "full", config, device="cuda", seed=1)
    again = SemIA.train(image, labels, tmp_path / "again", config, device="cuda", seed=1)
    SemIA.train(image, labels, tmp_path / "other", config, device="cuda", seed=2)

    def stop_at_5(step, total, losses):
        if step == 5:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        SemIA.train(image, labels, out, config, device="cuda", seed=1, progress=stop_at_5)
    assert json.loads((out / ckpt.STATE_JSON).read_text())["step"] == 5
    resumed = SemIA.train(image, labels, out, config, device="cuda", seed=1, resume=True)
    assert [r["step"] for r in read_log(out)] == list(range(1, 9))
    reference = _main_loss(read_log(tmp_path / "full"))
    gaps = {
        name: np.abs(_main_loss(read_log(tmp_path / name)) / reference - 1)[5:].max()
        for name in ("again", "resumed", "other")
    }
    floor = _max_weight_difference(full, again)
    print(
        f"after the restart, largest relative loss gap to the uninterrupted run: {gaps}; "
        f"largest weight difference: resumed {_max_weight_difference(full, resumed):.1e}, "
        f"a second identical run {floor:.1e}"
    )
    assert gaps["resumed"] < 0.05
    assert gaps["other"] > 2 * max(gaps["resumed"], 1e-3)
    assert _max_weight_difference(full, resumed) < 5 * floor + 1e-4


def test_cli_device_auto_picks_cuda_and_writes_the_analogy(tree, tmp_path):
    image, labels, target = tree
    out = tmp_path / "result.png"
    target_file = sorted((TREE / "cond").glob("*.png"))[0]
    code = cli_main(
        [
            "analogy", "--image", str(TREE / "img.png"), "--label", str(TREE / "label.png"),
            "--target", str(target_file), "--out", str(out), "--seed", "0",
            "--max-size", "128", "--quiet",
        ]
    )  # fmt: skip
    assert code in (0, None)
    written = read_image(out)
    expected = semia.analogy(image, labels, target, seed=0, device="cuda")
    assert written.shape == expected.shape
    # the CLI ran on CUDA: its result is the CUDA one (8-bit file), not the CPU one
    assert np.abs(written - expected).max(axis=-1).__gt__(2 / 255).mean() < 0.005


def test_batch_runs_gan_and_analogy_jobs_on_cuda(tmp_path):
    """Two spawned workers share the GPU: a GAN job (trained on CUDA) and an analogy job."""
    targets = sorted((TREE / "cond").glob("*.png"))[:2]
    line = {
        "image": str(TREE / "img.png"),
        "label": str(TREE / "label.png"),
        "targets": [str(t) for t in targets],
        "max_size": 96,
    }
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(
        json.dumps({**line, "name": "tree_gan", "method": "gan", "iters": 6})
        + "\n"
        + json.dumps({**line, "name": "tree_analogy", "method": "analogy"})
        + "\n"
    )
    out = tmp_path / "out"
    code = cli_main(
        ["batch", str(manifest), "--out", str(out), "--device", "cuda", "--workers", "2",
         "--quiet"]
    )  # fmt: skip
    records = [json.loads(x) for x in (out / "report.jsonl").read_text().splitlines()]
    assert code == 0, records
    assert len(records) == 3 and all(r.get("status", "ok") == "ok" for r in records), records
    for t in targets:
        gan = read_image(out / "tree_gan" / f"{t.stem}_gan.png")
        ana = read_image(out / "tree_analogy" / f"{t.stem}.png")
        assert gan.shape == ana.shape and gan.shape[0] <= 96 and gan.shape[1] <= 96
        assert np.abs(gan - ana).mean() > 0  # G's own pass, not a copy of the analogy


def test_cuda_generation_bench_config_is_small_on_memory(tree, tmp_path):
    """Default networks at 128 px: a generation's peak GPU memory stays far under a laptop
    GPU's 4 GB."""
    image, labels, target = tree
    config = replace(TrainConfig(), iters=2, full_size_iters=1, checkpoint_every=0,
                     preview_every=0)  # fmt: skip
    model = SemIA.train(image, labels, tmp_path, config, device="cuda", seed=0)
    torch.cuda.reset_peak_memory_stats()
    model.generate(target, seed=0)
    peak = torch.cuda.max_memory_allocated() / 2**20
    print(f"peak CUDA memory of one 128 px generation: {peak:.0f} MB")
    assert peak < 1024
