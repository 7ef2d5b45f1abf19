"""`semia edit`: start the local web editor (src/semia/editor/) and print its address."""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path

from semia.editor.state import EditorConfig
from semia.io import InputError, load_scene

log = logging.getLogger("semia")

_LOCAL = ("127.0.0.1", "localhost", "::1")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `edit` sub-command."""
    defaults = EditorConfig()
    p = subparsers.add_parser(
        "edit",
        help="local web editor: paint a new layout and see the result",
        description="Start a local web editor: paint a new layout over a photo with the "
        "colours of its label map and see the training-free result beside it (optionally "
        "train the GAN in the background). Without --image it opens a packaged example. "
        "Ctrl-C stops it.",
    )
    p.add_argument("--image", help="source photo (default: a packaged example)")
    p.add_argument("--label", help="label map of the source photo (with --image)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860; 0 = any free)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only); any other address "
        "lets other machines use the editor, which has no login",
    )
    p.add_argument(
        "--max-size",
        type=int,
        default=defaults.max_size,
        metavar="PX",
        help=f"longest side of photos in the editor (default: {defaults.max_size}); the "
        "result time grows with it (about 1 s at 256 px on 2 cores)",
    )
    p.add_argument(
        "--gan-iters",
        type=int,
        default=defaults.gan_iters,
        metavar="N",
        help=f"iterations of 'Train GAN' (default: {defaults.gan_iters})",
    )
    p.add_argument(
        "--cache-dir",
        default=defaults.cache_dir,
        help="folder of trained models, one per photo (default: ~/.cache/semia/editor)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=defaults.max_upload_mb,
        metavar="MB",
        help=f"largest upload accepted (default: {defaults.max_upload_mb:g} MiB)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="CPU threads for torch in the server (default: 0 = one per core)",
    )
    p.set_defaults(func=run)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"--device {name}: use auto, cpu or cuda")
    return name


def run(args: argparse.Namespace) -> int:
    """Serve the editor until Ctrl-C."""
    missing = [
        name
        for name, modules in (
            ("fastapi", ("fastapi",)),
            ("uvicorn", ("uvicorn",)),
            ("python-multipart", ("python_multipart", "multipart")),
        )
        if not any(importlib.util.find_spec(m) for m in modules)
    ]
    if missing:
        raise InputError(
            f"semia edit needs the editor extra ({', '.join(missing)} missing): "
            "pip install 'semia[editor]'"
        )
    from semia.editor.server import Editor, bind, create_app, make_server, url_for

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: use 0..65535")
    try:
        config = EditorConfig(
            max_size=args.max_size,
            gan_iters=args.gan_iters,
            cache_dir=args.cache_dir,
            max_upload_mb=args.max_upload_mb,
        )
    except ValueError as e:
        raise InputError(f"semia edit: {e}") from None
    if bool(args.image) != bool(args.label):
        raise InputError("--image and --label go together: give both, or neither for an example")
    start = None
    if args.image:
        image, labels = load_scene(args.image, args.label, config.max_size)
        start = (Path(args.image).stem, image, labels)
    if args.host not in _LOCAL:
        log.warning(
            "warning: --host %s lets other machines reach the editor; it has no login, so "
            "anyone who can reach %s:%d can use it",
            args.host,
            args.host,
            args.port,
        )
    editor = Editor(config, start, _device(args.device))
    sock = bind(args.host, args.port)
    url = url_for(args.host, sock.getsockname()[1])
    server = make_server(create_app(editor, args.host), sock)
    print(url, flush=True)
    log.info("editor: serving %s on %s (Ctrl-C stops)", editor.start_name, url)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        editor.trainer.shutdown()
    log.info("editor stopped")
    return 0
