"""The one exception type for bad user input, shared by every part of semia, and the one check
of a random seed."""

SEED_MAX = 2**32 - 1  # seeds are 0..SEED_MAX: what every random source semia uses accepts


class InputError(ValueError):
    """A user input (file, array or setting) that cannot be used; the message says why and what
    to do. The CLI turns it into exit code 2."""


def check_seed(seed: int) -> int:
    """The seed itself when it is a whole number in 0..SEED_MAX, else an InputError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise InputError(f"seed must be a whole number in 0..{SEED_MAX}, got {seed!r}")
    return seed
