"""The one exception type for bad user input, shared by every part of semia."""


class InputError(ValueError):
    """A user input (file, array or setting) that cannot be used; the message says why and what
    to do. The CLI turns it into exit code 2."""
