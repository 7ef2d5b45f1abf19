"""Conversions between semia's numpy arrays and the networks' tensors."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def one_hot(ids: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, H, W) long ids -> (B, K, H, W) float one-hot."""
    return F.one_hot(ids, num_classes).permute(0, 3, 1, 2).float()  # (B,H,W,K) -> (B,K,H,W)


def image_to_tensor(image: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(H, W, 3) float32 [0, 1] numpy -> (1, 3, H, W) float in [-1, 1] on `device`."""
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)
    return t.permute(2, 0, 1).unsqueeze(0) * 2.0 - 1.0  # (H,W,3) -> (1,3,H,W)


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [-1, 1] -> (H, W, 3) float32 numpy in [0, 1]."""
    out = ((t[0].detach().float().cpu() + 1.0) * 0.5).clamp(0.0, 1.0)
    return out.permute(1, 2, 0).contiguous().numpy()  # (3,H,W) -> (H,W,3)
