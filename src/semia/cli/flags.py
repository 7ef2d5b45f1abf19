"""Flags shared by the commands, built from the config dataclasses (each default and its help
exist once, in `semia.config`).

A command's settings are resolved in layers: the config's defaults (or `--preset`), then a
settings file (`--config FILE`, TOML or JSON), then the flags given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from pathlib import Path
from typing import Any

from semia.config import Config, ConfigError, InputConfig, load_config_file
from semia.errors import SEED_MAX, InputError

# --threads above this (or above the cores, on larger machines) only start idle threads: 1024
# take minutes to start on 2 cores, 100000 crash OpenBLAS; 0 already means one per core
THREADS_MAX = max(256, os.cpu_count() or 1)


def whole_number(lo: int, hi: int) -> Any:
    """An argparse type: a whole number in lo..hi (argparse's error names the flag)."""

    def parse(text: str) -> int:
        error = argparse.ArgumentTypeError(f"expected a whole number in {lo}..{hi}, got {text!r}")
        try:
            value = int(text)
        except ValueError:
            raise error from None
        if not lo <= value <= hi:
            raise error
        return value

    parse.__name__ = "int"
    return parse


COMMON = argparse.ArgumentParser(add_help=False)  # flags every command has
COMMON.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
COMMON.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
COMMON.add_argument(
    "--threads", type=whole_number(0, THREADS_MAX), default=0, metavar="N",
    help=f"CPU threads for torch, 0..{THREADS_MAX} (default: 0 = torch's default, one per "
    "core); 1 is often faster on a machine busy with other work",
)  # fmt: skip

DEVICES = ("auto", "cpu", "cuda")
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")  # label maps are refused in these


def add_seed_flag(parser: argparse.ArgumentParser, what: str = "random seed") -> None:
    parser.add_argument(
        "--seed", type=whole_number(0, SEED_MAX), default=0, metavar="S",
        help=f"{what}, 0..{SEED_MAX} (default: 0)",
    )  # fmt: skip


def _flag(dest: str) -> str:
    return "--" + dest.replace("__", "-").replace("_", "-")


def _number(kind: type) -> Any:
    """An argparse type that reads int / float and names the problem in argparse's words."""

    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}"
            ) from None

    parse.__name__ = kind.__name__
    return parse


def add_config_flags(
    parser: argparse.ArgumentParser, cls: type[Config], skip: tuple[str, ...] = (), prefix: str = ""
) -> None:
    """Add a --flag for every scalar field of a config dataclass (nested ones too).

    Nested configs get flags named --<field>-<subfield> (e.g. --loss-weights-gan); tuple fields
    get none (set them in a --config file). A flag not given leaves the value of the lower
    layers (defaults, preset, file); its help shows the default and the valid values.
    """
    hints = typing.get_type_hints(cls)
    defaults = cls()
    group = parser.add_argument_group(f"{cls.__name__} settings")
    flags: dict[str, str] = parser.get_default("config_flags") or {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        dest = prefix + f.name
        hint = hints[f.name]
        if isinstance(hint, type) and issubclass(hint, Config):
            add_config_flags(parser, hint, prefix=f"{dest}__")
            continue
        if hint not in (bool, int, float, str):
            continue
        meta, default = f.metadata, getattr(defaults, f.name)
        valid = ""
        if meta.get("lo") is not None:
            valid = f"; {meta['lo']:g}..{meta['hi']:g}" + (", odd" if meta.get("odd") else "")
        text = f"{meta.get('help', '')} (default: {default}{valid})".replace("%", "%%")
        flag = _flag(dest)
        flags[f"{cls.__name__}.{f.name}"] = flag
        if hint is bool:
            group.add_argument(
                flag, dest=dest, default=argparse.SUPPRESS, help=text,
                action=argparse.BooleanOptionalAction,
            )  # fmt: skip
        elif hint is str:
            group.add_argument(
                flag, dest=dest, default=argparse.SUPPRESS, help=text, choices=meta.get("choices")
            )
        else:
            group.add_argument(
                flag, dest=dest, default=argparse.SUPPRESS, help=text, type=_number(hint),
                metavar=hint.__name__.upper(),
            )  # fmt: skip
    parser.set_defaults(config_flags=flags)


def add_settings_flags(parser: argparse.ArgumentParser, presets: tuple[str, ...] = ()) -> None:
    """--config FILE (and --preset NAME where a config has presets)."""
    parser.add_argument(
        "--config", metavar="FILE", help="settings file (TOML or JSON) with the fields of the "
        "settings below (nested ones as tables); flags given on the command line override it",
    )  # fmt: skip
    if presets:
        parser.add_argument(
            "--preset", choices=("default", *presets), default="default",
            help="starting settings: default, or original (the paper's schedule); --config and "
            "flags apply on top",
        )  # fmt: skip


def _flag_values(cls: type[Config], args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The settings given as flags, as a nested dict."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        dest = prefix + f.name
        hint = hints[f.name]
        if isinstance(hint, type) and issubclass(hint, Config):
            nested = _flag_values(hint, args, prefix=f"{dest}__")
            if nested:
                values[f.name] = nested
        elif hasattr(args, dest):
            values[f.name] = getattr(args, dest)
    return values


def _explain(error: ConfigError, args: argparse.Namespace) -> InputError:
    flag = (getattr(args, "config_flags", None) or {}).get(error.path)
    where = f" (flag {flag})" if flag else ""
    return InputError(f"{error}{where}")


def config_from_args(
    cls: type[Config], args: argparse.Namespace, base: Config | None = None, prefix: str = ""
):
    """The settings of a command: `base` (default: the defaults), then --config, then flags
    (those of `add_config_flags(parser, cls, prefix=prefix)`)."""
    config = base if base is not None else cls()
    path = getattr(args, "config", None)
    try:
        if path is not None:
            data = load_config_file(path)
            try:
                config = cls.from_dict(data, config)
            except ConfigError as e:
                raise InputError(f"config file {path}: {e}") from None
        return cls.from_dict(_flag_values(cls, args, prefix), config)
    except ConfigError as e:
        raise _explain(e, args) from None


def add_input_flags(parser: argparse.ArgumentParser, training: bool = False) -> None:
    """--max-size (InputConfig.max_size, or train_max_size for training) and --unknown-labels."""
    default = InputConfig.train_max_size if training else InputConfig.max_size
    parser.add_argument(
        "--max-size", type=_number(int), default=default, metavar="PX",
        help=f"downscale inputs whose longest side exceeds PX (default: {default})",
    )  # fmt: skip
    add_unknown_labels_flag(parser)


def add_unknown_labels_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unknown-labels", choices=("error", "nearest"), default=InputConfig.unknown_labels,
        help="target labels the source lacks: error (list them) or nearest (map each to the "
        f"closest source label) (default: {InputConfig.unknown_labels})",
    )  # fmt: skip


def check_max_size(args: argparse.Namespace) -> None:
    """Refuse a --max-size outside InputConfig's range."""
    if getattr(args, "max_size", None) is not None:
        try:
            InputConfig(max_size=args.max_size)
        except ConfigError as e:
            raise InputError(f"--max-size: {str(e).split(': ', 1)[1]}") from None


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; other names are checked."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here; use --device cpu")
    return name


def add_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="source photo")
    parser.add_argument("--label", required=True, help="label map of the source photo")


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", choices=DEVICES,
        help="auto (CUDA when present, else the CPU) | cpu | cuda (default: auto)",
    )  # fmt: skip


def check_output(path: Path, *inputs: str | Path | None, flag: str = "--out") -> Path:
    """An output image path: an image suffix, not one of the inputs, a writable location.

    Checked before any computation, so a bad --out fails at once instead of after the work.
    """
    from semia.io import IMAGE_SUFFIXES, check_writable

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(
            f"{flag} {path}: give an image file name ending in one of {', '.join(IMAGE_SUFFIXES)}"
        )
    for source in inputs:
        if source is not None and Path(source).exists() and _same_file(path, Path(source)):
            raise InputError(
                f"{flag} {path} is the input file {source}; writing would overwrite it: choose "
                "another output name"
            )
    check_writable(path)
    return path


def check_label_output(path: Path, *inputs: str | Path | None, flag: str = "--out") -> Path:
    """`check_output` for a label map: a lossless format too, so its colours stay exact."""
    if path.suffix.lower() in LOSSY_SUFFIXES:
        raise InputError(
            f"{flag} {path}: a lossy format would blur the label colours; write a .png"
        )
    return check_output(path, *inputs, flag=flag)


def check_distinct_outputs(outputs: dict[str, str | Path | None]) -> None:
    """Refuse two outputs (flag -> path; None = not written) that are the same file."""
    given = [(flag, Path(path)) for flag, path in outputs.items() if path is not None]
    for i, (flag, path) in enumerate(given):
        for other_flag, other in given[:i]:
            if _same_file(path, other):
                raise InputError(
                    f"{flag} {path} and {other_flag} {other} are the same file; one would "
                    "overwrite the other: give them different names"
                )


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: two existing ones (hard links too), else one place."""
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass  # not readable: compare the paths
    return a.resolve() == b.resolve()
