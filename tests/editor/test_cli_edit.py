"""`semia edit` on the command line: help, bad flags, and a real start, request and Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import semia
from semia.cli import main

from .conftest import EXAMPLES, Editor, EditorConfig, httpx, serve

SRC = str(Path(semia.__file__).resolve().parents[1])


@pytest.fixture(autouse=True)
def keep_logging():
    """main() points the semia logger at this test's captured stderr; put it back after."""
    logger = logging.getLogger("semia")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["edit", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--image", "--label", "--port", "--host", "--max-size", "--cache-dir"):
        assert flag in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", str(EXAMPLES / "lake/img.png")], "--image and --label go together"),
        (["--image", "nope.png", "--label", "nope.png"], "nope.png: no such file"),
        (["--port", "70000"], "--port 70000: use 0..65535"),
        (
            ["--max-size", "4"],
            "EditorConfig.max_size: must be between 16 and 4096, got 4 (flag --max-size)",
        ),
    ],
)
def test_bad_flags_exit_2_with_one_line(args, message, capsys):
    assert main(["edit", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_photo_under_8_px_exits_2_at_start(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (50, 1), (120, 120, 120)).save(tmp_path / "tiny.png")
    Image.new("RGB", (50, 1), (200, 30, 30)).save(tmp_path / "label.png")
    flags = ["--image", str(tmp_path / "tiny.png"), "--label", str(tmp_path / "label.png")]
    with socket.socket() as taken:  # refused before it listens: else it stops at the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        flags += ["--port", str(taken.getsockname()[1]), "--cache-dir", str(tmp_path / "models")]
        assert main(["edit", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"semia: error: --image {tmp_path / 'tiny.png'} is 50x1 px; use at least 8x8"


def test_a_cache_dir_that_cannot_be_written_exits_2_at_start(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    assert main(["edit", "--cache-dir", str(tmp_path / "a-file" / "models")]) == 2
    err = capsys.readouterr().err.strip()
    assert "a-file/models: trained models cannot be written there" in err
    assert "give a writable folder" in err and "\n" not in err


def test_port_in_use(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["edit", "--port", str(port), "--cache-dir", str(tmp_path)]) == 2
    assert f"--port {port}: cannot listen there" in capsys.readouterr().err


def test_serves_until_ctrl_c(tmp_path):
    """Started for real: prints its URL, warns about --host, answers, stops on SIGINT."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", "import sys; from semia.cli import main; sys.exit(main())"]
    flags = ["edit", "--port", "0", "--host", "0.0.0.0", "--max-size", "64"]
    process = subprocess.Popen(
        [*command, *flags, "--cache-dir", str(tmp_path), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = process.stdout.readline().strip()  # the first line: the address
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), url
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(url + "api/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        assert health.json() == {"ok": True, "version": semia.__version__}
        session = httpx.post(url + "api/sessions/example", json={}, timeout=30).json()
        assert session["name"] == "lake" and max(session["width"], session["height"]) == 64
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "warning: --host 0.0.0.0 lets other machines reach the editor" in err
    assert "Traceback" not in err


def test_stopping_waits_for_the_start_up_warm_up(tmp_path):
    """A stop right after the start (Ctrl-C) lets the warm-up synthesis end before the server
    returns: a thread still inside torch when the interpreter exits aborts the process."""
    editor = Editor(EditorConfig(max_size=64, cache_dir=str(tmp_path)))
    warm_up, done = editor.warm_up, threading.Event()

    def slow_warm_up() -> None:  # the real warm-up, late: as on a busy machine
        time.sleep(0.5)
        warm_up()
        done.set()

    editor.warm_up = slow_warm_up
    run = serve(editor)
    run.stop()
    assert not run._thread.is_alive()
    assert done.is_set()


@pytest.mark.slow  # a training process starts and is stopped: ~15 s
def test_ctrl_c_while_training_stops_everything_cleanly(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: the training process must not
    print a traceback; the server stops it (cancel event, checkpoint) and exits with 130."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", "import sys; from semia.cli import main; sys.exit(main())"]
    process = subprocess.Popen(
        [*command, "edit", "--port", "0", "--max-size", "48", "--cache-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:
        url = process.stdout.readline().strip()
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "api/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        sid = httpx.post(url + "api/sessions/example", json={}, timeout=30).json()["session"]
        started = httpx.post(url + f"api/sessions/{sid}/train", timeout=60).json()
        assert started["state"] == "running"
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "cancelled" in err, err
