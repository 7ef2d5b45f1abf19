"""The one exception type for bad user input, shared by every part of semia, the one check
of a random seed and the one of an image's smallest side."""

SEED_MAX = 2**32 - 1  # seeds are 0..SEED_MAX: what every random source semia uses accepts
MIN_SIDE = 8  # the smallest side the GAN, the evaluation and the edge maps accept


class InputError(ValueError):
    """A user input (file, array or setting) that cannot be used; the message says why and what
    to do. The CLI turns it into exit code 2."""


def check_seed(seed: int) -> int:
    """The seed itself when it is a whole number in 0..SEED_MAX, else an InputError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise InputError(f"seed must be a whole number in 0..{SEED_MAX}, got {seed!r}")
    return seed


def check_min_size(array, what: str) -> None:
    """Refuse an image or map (H, W, ...) with a side below MIN_SIDE, naming it (flag, file)."""
    height, width = array.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InputError(f"{what} is {width}x{height} px; use at least {MIN_SIDE}x{MIN_SIDE}")
