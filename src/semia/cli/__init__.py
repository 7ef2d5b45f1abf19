"""The `semia` command line: parse -> config -> call the library; nothing else.

Exit codes: 0 success, 1 unexpected internal error, 2 bad input or usage, 130 interrupted.
Messages and progress go to stderr; results (paths, JSON) go to stdout. One module per command
group registers its sub-commands; nothing heavy (torch) is imported before a command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from semia import __version__
from semia.cli import analogy, apps, batch, demo, edit, gan, inspect_cmds, segment
from semia.errors import InputError

COMMANDS = (analogy, apps, gan, segment, edit, batch, demo, inspect_cmds)  # each has register()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semia",
        description="Semantic image analogy: re-synthesize a photo in a new semantic layout.",
    )
    parser.add_argument("--version", action="version", version=f"semia {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("semia: %(message)s"))
    root = logging.getLogger("semia")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(args.quiet)
    if getattr(args, "threads", 0) > 0:
        import torch

        torch.set_num_threads(args.threads)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except InputError as e:  # the library's boundary checks: actionable messages
        print(f"semia: error: {_with_flag_advice(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semia: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that closed early (| head)
        sys.stderr.close()
        return 0
    except OSError as e:
        if args.debug:
            raise
        if e.filename is None:
            return _internal_error(e)
        # a file the user named (or an output beside it) could not be read or written
        print(f"semia: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 2
    except MemoryError:
        print("semia: error: out of memory; try a smaller --max-size", file=sys.stderr)
        return 1
    except Exception as e:
        if args.debug:
            raise
        return _internal_error(e)


def _with_flag_advice(error: InputError) -> str:
    """The library's message, with the command-line spelling of what it suggests."""
    from semia.io.targets import UnknownLabelsError

    text = str(error)
    if isinstance(error, UnknownLabelsError):
        text = text.replace(
            "read the target with unknown='nearest'", "pass --unknown-labels nearest"
        )
    return text


def _internal_error(e: BaseException) -> int:
    print(
        f"semia: internal error: {type(e).__name__}: {e} (rerun with --debug for the "
        "traceback and report it)",
        file=sys.stderr,
    )
    return 1
