"""`semia edit`: start the local web editor (src/semia/editor/) and print its address."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import tempfile
from pathlib import Path

from semia.cli.flags import (
    COMMON,
    add_config_flags,
    add_device_flag,
    add_settings_flags,
    config_from_args,
    resolve_device,
)
from semia.editor.config import EditorConfig
from semia.errors import InputError, check_min_size

log = logging.getLogger("semia")

_LOCAL = ("127.0.0.1", "localhost", "::1")
_EXTRA = (  # the editor extra: package name, module names it may be imported as
    ("fastapi", ("fastapi",)),
    ("uvicorn", ("uvicorn",)),
    ("python-multipart", ("python_multipart", "multipart")),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "edit",
        parents=[COMMON],
        help="local web editor: paint a new layout, remove objects, sketch; see the result",
        description="Start a local web editor: paint a new layout over a photo with the "
        "colours of its label map, paint over an object to remove it, or redraw the photo's "
        "lines as a sketch, and see the training-free result beside it (optionally train the "
        "GAN in the background). Without --image it opens a packaged example. Prints the "
        "address to open; Ctrl-C stops it.",
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
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    add_device_flag(p)
    add_settings_flags(p)
    add_config_flags(p, EditorConfig)
    p.set_defaults(func=run)


def _check_cache(folder: Path, explicit: bool) -> None:
    """Refuse a --cache-dir where trained models cannot be written (warn for the default):
    found at start, not when the first GAN has trained."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as e:
        message = f"--cache-dir {folder}: trained models cannot be written there ({e.strerror})"
        if explicit:
            raise InputError(f"{message}; give a writable folder") from None
        log.warning("%s; Train GAN will fail: pass a writable --cache-dir", message)


def run(args: argparse.Namespace) -> int:
    """Serve the editor until Ctrl-C."""
    missing = [
        name for name, modules in _EXTRA if not any(importlib.util.find_spec(m) for m in modules)
    ]
    if missing:
        raise InputError(
            f"semia edit needs the editor extra ({', '.join(missing)} missing): "
            "pip install 'semia[editor]'"
        )
    from semia.editor.server import Editor, bind, create_app, make_server, url_for
    from semia.io import load_scene

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: use 0..65535")
    if bool(args.image) != bool(args.label):
        raise InputError("--image and --label go together: give both, or neither for an example")
    config = config_from_args(EditorConfig, args)
    _check_cache(config.cache_path(), explicit=bool(config.cache_dir))
    device = resolve_device(args.device)
    start = None
    if args.image:
        image, labels = load_scene(args.image, args.label, config.max_size)
        check_min_size(image, f"--image {args.image}")
        start = (Path(args.image).stem, image, labels)
    if args.host not in _LOCAL:
        log.warning(
            "warning: --host %s lets other machines reach the editor; it has no login, so "
            "anyone who can reach %s:%d can use it",
            args.host,
            args.host,
            args.port,
        )
    editor = Editor(config, start, device)
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
    return 130  # the server only stops on a signal (Ctrl-C): the CLI's "interrupted" status
