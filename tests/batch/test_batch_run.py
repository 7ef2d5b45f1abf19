"""Running batches on the local process pool: outputs, failures, resume, the GAN model cache."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from batch_util import (
    SIZE,
    copy_examples,
    expected_analogy,
    line,
    read_png,
    records,
    write_jsonl,
)
from PIL import Image

from semia.batch import make_plan, read_records, run_batch
from semia.cli import main
from semia.gan import SemIA
from semia.io import read_target
from semia.io.files import LOCK_FILE


def test_pool_outputs_failures_and_resume(tmp_path, capsys):
    root = copy_examples(tmp_path)
    (root / "tree" / "cond" / "broken.png").write_bytes(b"not a png")
    foreign = np.array(Image.open(root / "lake" / "cond" / "1.png").convert("RGB"))
    foreign[:40, :40] = (255, 0, 255)  # a colour the lake's label map lacks
    Image.fromarray(foreign).save(root / "lake" / "cond" / "foreign.png")
    lines = [
        line("tree", ["1", "broken", "2"]),
        line("lake", ["foreign"], unknown_labels="nearest"),
        line("lake", ["3"], seed=2),
        {**line("lake", ["1"]), "image": "lake/missing.png", "name": "gone"},
    ]
    manifest = write_jsonl(root / "jobs.jsonl", lines)
    out = tmp_path / "out"
    code = main(["batch", str(manifest), "--out", str(out), "--workers", "2", "-q"])
    assert code == 3  # some jobs failed
    err = capsys.readouterr().err
    assert "6 job(s) run" in err and "4 ok, 2 failed" in err and "4 output(s) written" in err

    for scene, target, seed in [("tree", "1", 0), ("tree", "2", 0), ("lake", "3", 2)]:
        written = read_png(out / scene / "img" / f"{target}.png")
        assert written.shape[:2] == expected_analogy(root, scene, target).shape[:2]
        assert np.array_equal(written, expected_analogy(root, scene, target, seed))
    assert not (out / "gone").exists() and not (out / "tree" / "img" / "broken.png").exists()

    by_job = {r["job"]: r for r in records(out)}
    assert set(by_job) == {"tree/img/1.png", "tree/img/broken.png", "tree/img/2.png",
                           "lake/img/foreign.png", "lake/img/3.png", "gone/1.png"}  # fmt: skip
    mapped = by_job["lake/img/foreign.png"]
    assert mapped["status"] == "ok" and "foreign.png: unknown" in mapped["warnings"][0]
    assert by_job["tree/img/broken.png"]["status"] == "failed"
    assert "broken.png" in by_job["tree/img/broken.png"]["error"]
    assert "missing.png: no such file" in by_job["gone/1.png"]["error"]
    ok = by_job["lake/img/3.png"]
    assert ok["status"] == "ok" and ok["error"] is None and ok["seconds"] > 0
    assert ok["outputs"][0]["path"] == "lake/img/3.png" and ok["settings"]["seed"] == 2
    assert ok["settings"]["max_size"] == SIZE and ok["lines"] == [3]

    # rerun: the four done outputs are skipped, the two failures are tried again
    plan = make_plan(manifest, out)
    assert (plan.skipped, sorted(j.name for j in plan.jobs)) == (
        4,
        ["gone/1.png", "tree/img/broken.png"],
    )

    # fix one failure, change one input and one setting: exactly those are redone
    shutil.copy(root / "tree" / "cond" / "3.png", root / "tree" / "cond" / "broken.png")
    shutil.copy(root / "tree" / "cond" / "4.png", root / "tree" / "cond" / "2.png")
    lines[2]["seed"] = 3
    write_jsonl(manifest, lines)
    before = len(records(out))
    summary = run_batch(make_plan(manifest, out), workers=2)
    assert (summary.ok, summary.failed, summary.outputs_skipped) == (3, 1, 2)
    redone = {r["job"] for r in records(out)[before:] if r["status"] == "ok"}
    assert redone == {"tree/img/broken.png", "tree/img/2.png", "lake/img/3.png"}
    assert np.array_equal(
        read_png(out / "tree" / "img" / "2.png"), expected_analogy(root, "tree", "4")
    )
    assert np.array_equal(
        read_png(out / "lake" / "img" / "3.png"), expected_analogy(root, "lake", "3", 3)
    )

    # the same jobs as CSV have the same keys: nothing left to do
    csv = root / "jobs.csv"
    csv.write_text(
        "image,label,targets,max_size,seed\n"
        f"tree/img.png,tree/label.png,tree/cond/1.png;tree/cond/broken.png;tree/cond/2.png,{SIZE},\n"
        f"lake/img.png,lake/label.png,lake/cond/3.png,{SIZE},3\n"
    )
    plan = make_plan(csv, out)
    assert (plan.jobs, plan.skipped, plan.total) == ([], 4, 4)


def test_gan_trains_once_per_photo_and_reuses_the_model(tmp_path):
    root = copy_examples(tmp_path)
    gan = {"method": "gan", "iters": 2}
    lines = [line("lake", ["1"], **gan), line("lake", ["2", "3"], name="lake2", **gan)]
    manifest = write_jsonl(root / "jobs.jsonl", lines)
    out = tmp_path / "out"
    summary = run_batch(make_plan(manifest, out), workers=1)
    assert (summary.jobs, summary.ok, summary.outputs_written) == (1, 1, 3)
    (record,) = records(out)
    assert record["trained"] is True and record["lines"] == [1, 2]
    models = [p for p in (out / "models").iterdir()]
    assert [m.name for m in models] == [Path(record["model"]).name]  # no .partial left
    assert not list(models[0].glob("train_state.*"))

    model = SemIA.load(models[0])
    source = model.labels
    assert max(model.source_labels.shape) == SIZE
    for path, target in [("lake/img/1_gan.png", "1"), ("lake2/2_gan.png", "2")]:
        ids = read_target(root / "lake" / "cond" / f"{target}.png", source, "error", SIZE).ids
        expected = (np.clip(model.generate(ids), 0, 1) * 255 + 0.5).astype(np.uint8)
        assert np.abs(read_png(out / path).astype(int) - expected).max() <= 1

    # one more target: the cached model generates it, nothing is trained, done ones skipped
    lines[1]["targets"].append("lake/cond/6.png")
    write_jsonl(manifest, lines)
    mtime = (models[0] / "model.safetensors").stat().st_mtime_ns
    plan = make_plan(manifest, out)
    assert plan.skipped == 3 and [len(j.outputs) for j in plan.jobs] == [1]
    summary = run_batch(plan, workers=1)
    assert summary.ok == 1 and records(out)[-1]["trained"] is False
    assert (out / "lake2" / "6_gan.png").is_file()
    assert (models[0] / "model.safetensors").stat().st_mtime_ns == mtime


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "semia.cli", "batch", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw,
    )  # fmt: skip


def _running(pid: int) -> bool:
    """The process exists and is no zombie (Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """Process ids whose parent is pid (Linux /proc; empty elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_resume_after_kill(tmp_path):
    root = copy_examples(tmp_path)
    lines = [
        line(s, ["1", "2", "3"], seed=k, name=f"{s}{k}") for k in range(2) for s in ("tree", "lake")
    ]
    manifest = write_jsonl(root / "jobs.jsonl", lines)
    out = tmp_path / "out"
    report = out / "report.jsonl"
    proc = _cli(str(manifest), "--out", str(out), "--workers", "1", "-q")
    deadline = time.monotonic() + 120
    while not (report.is_file() and report.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no job finished in 2 minutes"
        time.sleep(0.02)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _running(pid)], "orphaned workers"
    first = records(out)
    assert 1 <= len(first) < 12, "the kill should land mid-run"
    done = {r["outputs"][0]["path"] for r in first}

    rerun = _cli(str(manifest), "--out", str(out), "--workers", "2", "-q")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"{12 - len(first)} job(s) run" in err and f"{len(first)} already done" in err
    second = records(out)[len(first) :]
    assert {r["outputs"][0]["path"] for r in second}.isdisjoint(done)  # finished ones skipped
    for record in first + second:
        assert record["status"] == "ok"
        path = out / record["outputs"][0]["path"]
        assert read_png(path).shape[2] == 3 and max(read_png(path).shape[:2]) == SIZE
    assert len({r["outputs"][0]["path"] for r in first + second}) == 12
    assert not [p for p in out.rglob(".*.png")]  # no temporary files left


def test_ctrl_c_stops_the_workers_and_exits_130(tmp_path):
    root = copy_examples(tmp_path)
    lines = [line("tree", ["1", "2", "3", "4"], seed=k, name=f"t{k}") for k in range(4)]
    manifest = write_jsonl(root / "jobs.jsonl", lines)
    out = tmp_path / "out"
    # SIGINT as a terminal's Ctrl-C delivers it (even when this test runs with it ignored)
    proc = _cli(
        str(manifest), "--out", str(out), "--workers", "2", "-q",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / "report.jsonl").is_file() or not (out / "report.jsonl").read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "semia: interrupted" in err
    assert "run the same command again to continue where it stopped" in err
    deadline = time.monotonic() + 10  # terminated workers may take a moment to exit
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _running(pid)], "workers left running"
    assert 1 <= len(records(out)) < 16  # every line whole JSON; the rest left for a rerun
    assert not (out / ".semia.lock").exists()


def test_ctrl_c_mid_training_saves_a_checkpoint_the_rerun_resumes(tmp_path):
    root = copy_examples(tmp_path)
    gan = {"method": "gan", "iters": 30, "checkpoint_every": 0, "preview_every": 0}
    manifest = write_jsonl(root / "jobs.jsonl", [line("lake", ["1"], **gan)])
    out = tmp_path / "out"
    args = (str(manifest), "--out", str(out), "--workers", "1", "-q")
    proc = _cli(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    log = None
    while log is None or log.read_text().count("\n") < 3:  # 3 iterations done
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        log = next(out.glob("models/*.partial/log.jsonl"), None)
        time.sleep(0.02)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "run the same command again" in err, err
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    partial = log.parent
    assert not (partial / LOCK_FILE).exists()  # released, not left for a rerun to take over
    step = json.loads((partial / "train_state.json").read_text())["step"]
    assert 3 <= step < 30
    done = log.read_text().splitlines()[:step]  # with the seconds each iteration took

    rerun = _cli(*args)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and "stale lock" not in err, err
    (record,) = records(out)
    assert record["status"] == "ok" and record["trained"] is True
    model = out / record["model"]
    assert (model / "log.jsonl").read_text().splitlines()[:step] == done  # resumed, not redone
    assert SemIA.load(model).step == 30 and not partial.exists()


def test_dry_run_lists_without_running(tmp_path, capsys):
    root = copy_examples(tmp_path)
    manifest = write_jsonl(
        root / "jobs.jsonl", [line("tree", ["1", "2"]), line("lake", ["1"], method="gan")]
    )
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "--out", str(out), "--dry-run", "--iters", "5"]) == 0
    text = capsys.readouterr().out
    assert "run  gan     line 2: lake/img (gan)  model to train" in text
    assert str(out / "tree" / "img" / "2.png") in text
    assert "3 job(s) would run (3 output(s)); 0 of 3 output(s) already done" in text
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers 0"),
        (["--seed", "-1"], "argument --seed: expected a whole number in 0..4294967295"),
        (["--seed", "4294967296"], "argument --seed: expected a whole number in 0..4294967295"),
        (["--worker-threads", "0"], "argument --worker-threads: expected a whole number in 1.."),
        (["--device", "tpu"], "--device tpu"),
    ],
)
def test_bad_flags_exit_2(tmp_path, capsys, args, message):
    root = copy_examples(tmp_path)
    manifest = write_jsonl(root / "jobs.jsonl", [line("tree", ["1"])])
    try:
        status = main(["batch", str(manifest), "--out", str(tmp_path / "o"), *args])
    except SystemExit as e:  # argparse's own usage errors
        status = e.code
    assert status == 2
    assert message in capsys.readouterr().err


def test_bad_manifest_exits_2(tmp_path, capsys):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"image": "i", "label": "l", "targets": ["t"], "sed": 1}))
    assert main(["batch", str(manifest), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("semia: error:") and "line 1" in err and "'seed'" in err
    assert len(err.splitlines()) == 1


def test_out_a_file_or_manifest_a_folder_exits_2(tmp_path, capsys):
    root = copy_examples(tmp_path)
    manifest = write_jsonl(root / "jobs.jsonl", [line("tree", ["1"])])
    (tmp_path / "taken").write_text("x")
    assert main(["batch", str(manifest), "--out", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"semia: error: --out {tmp_path / 'taken'}: it is a file, not a folder; give a folder "
        "path (it is created if missing)\n"
    )  # before any progress bar
    assert main(["batch", str(root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"semia: error: manifest {root}: is a folder; give the manifest file in it (.jsonl or "
        ".csv)\n"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_without_a_gpu_exits_2_up_front(tmp_path, capsys):
    root = copy_examples(tmp_path)
    manifest = write_jsonl(root / "jobs.jsonl", [line("tree", ["1"])])
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "--out", str(out), "--device", "cuda", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("semia: error: --device cuda: no CUDA device") and err.count("\n") == 1
    assert not out.exists()  # no job ran, no report


def test_damaged_report_is_skipped(tmp_path, capsys):
    root = copy_examples(tmp_path)
    manifest = write_jsonl(root / "jobs.jsonl", [line("tree", ["1"])])
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "--out", str(out), "--workers", "1", "-q"]) == 0
    report = out / "report.jsonl"
    with report.open("ab") as f:
        f.write(b"\x00\xff")  # a damaged last line, not UTF-8
    write_jsonl(manifest, [line("tree", ["1", "2"])])
    assert main(["batch", str(manifest), "--out", str(out), "--workers", "1", "-q"]) == 0
    err = capsys.readouterr().err
    assert "1 job(s) run" in err and "1 ok, 0 failed" in err and "1 already done" in err
    assert f"{report}: skipped 1 damaged line(s)" in err
    lines = report.read_bytes().split(b"\n")
    assert lines[1] == b"\x00\xff" and lines[3] == b""  # the new record on a line of its own
    assert [r["outputs"][0]["path"] for r in read_records(report)] == [
        "tree/img/1.png",
        "tree/img/2.png",
    ]
    assert np.array_equal(read_png(out / "tree/img/2.png"), expected_analogy(root, "tree", "2"))


def test_help_and_registration(capsys):
    from semia.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert "batch" in sub.choices
    with pytest.raises(SystemExit) as info:
        main(["batch", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--out", "--method", "--workers", "--ray", "--unknown-labels", "--dry-run"):
        assert flag in text
