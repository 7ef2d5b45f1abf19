"""Benchmark of `semia edit`: stroke-to-result latency, through the HTTP API and in the browser.

Serves the editor (uvicorn in a background thread, as `semia edit` does) on a real shared scene
with its longest side at 256 and 512 px, then paints brush strokes (a disc of another class,
somewhere new each time, as a user would) and times

- library: `semia.analogy` on the same layouts, in-process (the floor under the other two);
- api: one `POST /api/sessions/{id}/result` round trip (target ids up, PNG down), client side;
- api remove / api sketch: the same round trip for the remove task (a disc masked each time)
  and the sketch task (a line added to the photo's own edges each time);
- browser: in Debian's Chromium driven by Playwright, from releasing the mouse after a stroke
  to the new result shown on the page (includes the page's 120 ms debounce). Skipped when
  chromium or playwright is missing, or with --no-browser.

    python benchmarks/bench_editor.py [--scene lake] [--sizes 256,512] [--strokes 6] [--threads 1]

Target: the result within about a second of a stroke at 256 px. Timings on a machine shared
with other jobs are pessimistic; the load average is printed alongside.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from semia.editor.config import EditorConfig
from semia.editor.server import Editor, bind, create_app, make_server
from semia.io import load_scene

DATA = Path(
    os.environ.get(
        "SEMIA_EXAMPLES", Path(__file__).resolve().parents[2] / "shared" / "data" / "semia-examples"
    )
)


def _serve(editor: Editor):
    sock = bind("127.0.0.1", 0)
    server = make_server(create_app(editor), sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _strokes(ids: np.ndarray, count: int) -> list[tuple[int, int, int, int]]:
    """(x, y, radius, class) of `count` brush dabs, each painting a class not already there."""
    height, width = ids.shape
    rng = np.random.default_rng(0)
    radius = max(3, min(height, width) // 16)
    classes = np.unique(ids)
    out = []
    while len(out) < count:
        x = int(rng.integers(radius, width - radius))
        y = int(rng.integers(radius, height - radius))
        cls = int(rng.choice(classes[classes != ids[y, x]]))
        out.append((x, y, radius, cls))
    return out


def _disc(ids: np.ndarray, x: int, y: int, radius: int, cls: int) -> None:
    yy, xx = np.ogrid[: ids.shape[0], : ids.shape[1]]
    ids[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = cls


def bench_api(url: str, strokes) -> list[float]:
    import httpx

    client = httpx.Client(base_url=url, timeout=120)
    session = client.post("/api/sessions/example", json={}).json()
    import base64

    ids = np.frombuffer(base64.b64decode(session["labels"]), np.uint8)
    ids = ids.reshape(session["height"], session["width"]).copy()
    client.post(f"/api/sessions/{session['session']}/result", content=ids.tobytes())  # warm
    times = []
    for x, y, radius, cls in strokes:
        _disc(ids, x, y, radius, cls)
        t0 = time.perf_counter()
        response = client.post(f"/api/sessions/{session['session']}/result", content=ids.tobytes())
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text
    client.close()
    return times


def bench_api_task(url: str, strokes, task: str) -> list[float]:
    """The remove or sketch task: each stroke adds a disc to the mask, or a line to the sketch
    (which starts from the photo's own edges)."""
    import io

    import httpx
    from PIL import Image

    client = httpx.Client(base_url=url, timeout=120)
    session = client.post("/api/sessions/example", json={}).json()
    sid, height, width = session["session"], session["height"], session["width"]
    layer = np.zeros((height, width), np.uint8)
    if task == "sketch":
        edges = client.get(f"/api/sessions/{sid}/edges.png").content
        layer = (np.asarray(Image.open(io.BytesIO(edges)).convert("L")) < 128).astype(np.uint8)
        client.post(f"/api/sessions/{sid}/sketch", content=layer.tobytes())  # warm
    times = []
    for x, y, radius, _ in strokes:
        if task == "remove":
            _disc(layer, x, y, max(2, radius // 2), 1)
        else:
            layer[y, max(0, x - 2 * radius) : x + 2 * radius] = 1
        t0 = time.perf_counter()
        response = client.post(f"/api/sessions/{sid}/{task}", content=layer.tobytes())
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text
        if task == "remove":
            layer[:] = 0  # one object at a time
    client.close()
    return times


def bench_library(image: np.ndarray, labels, strokes) -> list[float]:
    """The same strokes through `semia.analogy` directly: the floor under the API's time."""
    from semia import analogy

    ids = labels.ids.copy()
    times = []
    for x, y, radius, cls in strokes:
        _disc(ids, x, y, radius, cls)
        t0 = time.perf_counter()
        analogy(image, labels, ids, seed=0)
        times.append(time.perf_counter() - t0)
    return times


def bench_browser(url: str, chromium: str, strokes) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        page.goto(url + "/")
        page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
        state = "window.semiaEditor.state"
        idle = f"v => {state}.resultVersion > v && !{state}.pending && !{state}.inflight"
        page.wait_for_function(idle, arg=0, timeout=120_000)
        box = page.locator("#canvas").bounding_box()
        width, height = page.evaluate(f"() => [{state}.width, {state}.height]")
        for x, y, radius, cls in strokes:
            page.click(f"#palette button[data-class='{cls}']")
            page.evaluate(f"r => {{ {state}.size = r; }}", 2 * radius)
            version = page.evaluate(f"() => {state}.resultVersion")
            sx = box["x"] + (x + 0.5) * box["width"] / width
            sy = box["y"] + (y + 0.5) * box["height"] / height
            page.mouse.move(sx, sy)
            page.mouse.down()
            page.mouse.move(sx + 4, sy + 2, steps=3)
            t0 = time.perf_counter()
            page.mouse.up()
            page.wait_for_function(idle, arg=version, timeout=120_000)
            times.append(time.perf_counter() - t0)
        browser.close()
    return times


def _fmt(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):.2f} s  best {min(times):.2f} s  "
        f"worst {max(times):.2f} s  (n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="lake", help="scene folder under SEMIA_EXAMPLES")
    parser.add_argument("--sizes", default="256,512", help="longest sides to time")
    parser.add_argument("--strokes", type=int, default=6, help="timed strokes per size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of the server")
    parser.add_argument("--no-browser", action="store_true", help="time the API only")
    args = parser.parse_args()
    folder = DATA / args.scene
    if not folder.is_dir():
        sys.exit(f"no scene {folder}; set SEMIA_EXAMPLES to the shared examples folder")
    image_path = next(p for p in sorted(folder.glob("img.*")))
    label_path = next(p for p in sorted(folder.glob("label.*")))
    torch.set_num_threads(args.threads)
    chromium = shutil.which("chromium")
    browser = not args.no_browser and chromium is not None
    if browser:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            browser = False
    print(f"semia edit latency, scene {args.scene}, torch threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        image, labels = load_scene(image_path, label_path, size)
        with tempfile.TemporaryDirectory() as cache:
            config = EditorConfig(max_size=size, cache_dir=cache)
            editor = Editor(config, start=(args.scene, image, labels))
            server, thread, url = _serve(editor)
            strokes = _strokes(labels.ids, args.strokes)
            height, width = labels.size
            print(f"{width}x{height} px  library  {_fmt(bench_library(image, labels, strokes))}")
            print(f"{width}x{height} px  api      {_fmt(bench_api(url, strokes))}")
            for task in ("remove", "sketch"):
                times = bench_api_task(url, strokes, task)
                print(f"{width}x{height} px  api {task:7s}{_fmt(times)}")
            if browser:
                print(
                    f"{width}x{height} px  browser  {_fmt(bench_browser(url, chromium, strokes))}"
                )
            server.should_exit = True
            thread.join(10)
    if not browser:
        print("browser: skipped (needs Debian's chromium and playwright; or --no-browser given)")


if __name__ == "__main__":
    main()
