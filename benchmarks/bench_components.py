"""Per-component forward + backward timings of the SemIA GAN parts (CPU by default).

Run: python benchmarks/bench_components.py [--device cpu] [--repeats 5] [--classes 5] [--threads N]
Prints parameter counts and the median fwd+bwd time of each component at 128x128 and 256x176.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from semia.config import AugmentConfig, PatchCoherenceConfig
from semia.gan.augment import augment_pair
from semia.gan.losses import (
    feature_matching_loss,
    lsgan_g_loss,
    patch_coherence_loss,
    semantic_alignment_loss,
)
from semia.gan.networks import Discriminator, Generator, Segmenter


def _time(fn: Callable[[], None], repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _scene(height: int, width: int, classes: int, device: torch.device):
    gen = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, height, width, generator=gen) * 2 - 1).to(device)
    # blocky label map so that patches of one class are contiguous
    coarse = torch.randint(
        0, classes, (1, 1, max(1, height // 16), max(1, width // 16)), generator=gen
    )
    ids = (
        F.interpolate(coarse.float(), size=(height, width), mode="nearest")[:, 0].long().to(device)
    )
    onehot = F.one_hot(ids, classes).permute(0, 3, 1, 2).float()  # (1, K, H, W)
    return image, ids, onehot


def _bench_size(gen_net, disc, seg, height, width, args) -> list[tuple[str, float]]:
    """Median fwd+bwd seconds of every component at one size."""
    device = torch.device(args.device)
    image, ids, onehot = _scene(height, width, args.classes, device)
    aug_gen = torch.Generator(device=device).manual_seed(1)
    image_aug, ids_aug = augment_pair(image, ids, 1.0, AugmentConfig(), aug_gen)
    onehot_aug = F.one_hot(ids_aug, args.classes).permute(0, 3, 1, 2).float()
    fake = image_aug.clone().requires_grad_(True)

    def aug():
        augment_pair(image, ids, 1.0, AugmentConfig(), aug_gen)

    def g_fwd():
        with torch.no_grad():
            gen_net(image, onehot, onehot_aug)

    def g_step():
        gen_net.zero_grad(set_to_none=True)
        gen_net(image, onehot, onehot_aug).mean().backward()

    def d_step():
        disc.zero_grad(set_to_none=True)
        logits, feats = disc(image)
        (lsgan_g_loss(logits) + sum(f.mean() for f in feats)).backward()

    def fm_step():
        fake.grad = None
        _, real_f = disc(image)
        _, fake_f = disc(fake)
        feature_matching_loss(real_f, fake_f).backward()

    def s_step():
        seg.zero_grad(set_to_none=True)
        semantic_alignment_loss(seg(image), ids).backward()

    def pc_step():
        fake.grad = None
        patch_coherence_loss(fake, onehot_aug, image, onehot, PatchCoherenceConfig()).backward()

    rows = [
        ("augment_pair", aug),
        ("G fwd (no grad)", g_fwd),
        ("G fwd+bwd", g_step),
        ("D fwd+bwd", d_step),
        ("D real+fake fwd, FM bwd", fm_step),
        ("S fwd+bwd (CE)", s_step),
        ("patch coherence fwd+bwd", pc_step),
    ]
    return [(name, _time(fn, args.repeats, device)) for name, fn in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    gen_net = Generator(args.classes).to(device)
    disc = Discriminator().to(device)
    seg = Segmenter(args.classes).to(device)
    for name, net in (("generator", gen_net), ("discriminator", disc), ("segmenter", seg)):
        print(f"{name:14s} {sum(p.numel() for p in net.parameters()):>9,d} parameters")
    print(f"device {device}, threads {torch.get_num_threads()}, median of {args.repeats}")

    for height, width in ((128, 128), (256, 176)):
        print(f"\n{height}x{width}")
        for name, seconds in _bench_size(gen_net, disc, seg, height, width, args):
            print(f"  {name:26s} {1000 * seconds:8.1f} ms")


if __name__ == "__main__":
    main()
