"""Manifests (JSON lines and CSV), their validation, and job planning (no synthesis here)."""

from __future__ import annotations

import json

import pytest
from batch_util import copy_examples, line, write_jsonl

from semia.batch import make_plan, pending_jobs, plan_jobs, read_manifest, train_config
from semia.config import PatchConfig, TrainConfig
from semia.io import InputError


def test_jsonl_paths_are_relative_to_the_manifest(tmp_path):
    manifest = tmp_path / "sub" / "jobs.jsonl"
    manifest.parent.mkdir()
    manifest.write_text(
        "# a comment\n\n"
        + json.dumps({"image": "a/img.png", "label": "/abs/label.png", "targets": ["t.png"]})
        + "\n"
        + json.dumps(
            {"image": "b.png", "label": "l.png", "targets": ["x", "y"], "seed": 4, "lr": 1}
        )
        + "\n"
    )
    first, second = read_manifest(manifest)
    assert first.line == 3 and second.line == 4
    assert first.image == tmp_path / "sub" / "a" / "img.png"
    assert str(first.label) == "/abs/label.png"
    assert first.targets == (tmp_path / "sub" / "t.png",)
    assert second.settings == {"seed": 4, "lr": 1.0}
    assert isinstance(second.settings["lr"], float)  # an int where a float is due is fine


def test_csv_reads_like_jsonl(tmp_path):
    (tmp_path / "jobs.csv").write_text(
        "image,label,targets,seed,method,iters\n"
        "a/img.png,a/label.png,a/1.png; a/2.png,3,,\n"
        "b/img.png,b/label.png,b/1.png,,gan,20\n"
    )
    write_jsonl(
        tmp_path / "jobs.jsonl",
        [
            {"image": "a/img.png", "label": "a/label.png", "targets": ["a/1.png", "a/2.png"],
             "seed": 3},
            {"image": "b/img.png", "label": "b/label.png", "targets": ["b/1.png"],
             "method": "gan", "iters": 20},
        ],
    )  # fmt: skip
    from_csv = read_manifest(tmp_path / "jobs.csv")
    from_jsonl = read_manifest(tmp_path / "jobs.jsonl")
    assert [(e.image, e.label, e.targets, e.settings) for e in from_csv] == [
        (e.image, e.label, e.targets, e.settings) for e in from_jsonl
    ]
    assert [e.line for e in from_csv] == [2, 3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"image": "i", "label": "l", "targets": ["t"], "iter": 3}', "did you mean 'iters'"),
        ('{"image": "i", "label": "l", "targets": ["t"], "seed": "3"}', "'seed' must be int"),
        ('{"image": "i", "label": "l", "targets": ["t"], "seed": true}', "'seed' must be int"),
        (
            '{"image": "i", "label": "l", "targets": ["t"], "seed": 99999999999999999999}',
            "seed must be between 0 and 4294967295, got 99999999999999999999",
        ),
        ('{"image": "i", "label": "l", "targets": ["t"], "seed": -1}', "seed must be between 0"),
        ('{"image": "i", "label": "l", "targets": "t"}', "'targets' must be a non-empty list"),
        ('{"image": "i", "label": "l", "targets": []}', "'targets' must be a non-empty list"),
        ('{"image": "i", "targets": ["t"]}', "missing 'label'"),
        ('{"image": "i", "label": "l", "targets": ["t"], "method": "nn"}', "method must be"),
        (
            '{"image": "i", "label": "l", "targets": ["t"], "max_size": 2}',
            "max_size must be between 8 and",
        ),
        ('{"image": "i", "label": "l", "targets": ["t"], "name": "../up"}', "relative folder"),
        ('{"image": "i", "label": "l", "targets": ["t"]', "not valid JSON"),
        ('["i", "l", ["t"]]', "expected a JSON object"),
        (
            '{"image": "i", "label": "l", "targets": ["t"], "unknown_labels": "drop"}',
            "unknown_labels must be",
        ),
    ],
)
def test_bad_lines_name_the_line(tmp_path, text, message):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text('{"image": "i", "label": "l", "targets": ["t"]}\n' + text + "\n")
    with pytest.raises(InputError, match="line 2") as info:
        read_manifest(manifest)
    assert message in str(info.value)


def test_bad_manifest_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_manifest(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n# only a comment\n")
    with pytest.raises(InputError, match="no jobs"):
        read_manifest(tmp_path / "empty.jsonl")
    (tmp_path / "jobs.txt").write_text("x")
    with pytest.raises(InputError, match=r"\.jsonl .* or a \.csv"):
        read_manifest(tmp_path / "jobs.txt")
    (tmp_path / "jobs.csv").write_text("image,label,targets,sede\ni,l,t,1\n")
    with pytest.raises(InputError, match=r"line 1 .*did you mean 'seed'"):
        read_manifest(tmp_path / "jobs.csv")
    (tmp_path / "typed.csv").write_text("image,label,targets,seed\ni,l,t,x\n")
    with pytest.raises(InputError, match="line 2: 'seed' must be int"):
        read_manifest(tmp_path / "typed.csv")
    (tmp_path / "seed.csv").write_text("image,label,targets,seed\ni,l,t,4294967296\n")
    with pytest.raises(InputError, match="line 2: seed must be between 0 and 4294967295"):
        read_manifest(tmp_path / "seed.csv")
    with pytest.raises(InputError, match="is a folder; give the manifest file in it"):
        read_manifest(tmp_path)


def test_largest_seed_is_taken(tmp_path):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [line("tree", ["1"], seed=2**32 - 1)])
    assert read_manifest(manifest)[0].settings["seed"] == 2**32 - 1


def _plan(tmp_path, lines, defaults=None):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", lines)
    return plan_jobs(read_manifest(manifest), tmp_path / "out", tmp_path, defaults)


def test_settings_of_the_other_method_are_an_error(tmp_path):
    with pytest.raises(InputError, match=r"line 1: iters do.* not apply to method analogy"):
        _plan(tmp_path, [line("tree", ["1"], iters=5)])
    with pytest.raises(InputError, match=r"line 1: patch_size .*method gan"):
        _plan(tmp_path, [line("tree", ["1"], patch_size=7)], {"method": "gan"})
    # a flag for the other method is simply unused by analogy lines
    (job,) = _plan(tmp_path, [line("tree", ["1"])], {"iters": 5})
    assert job.config == PatchConfig()


def test_plan_outputs_configs_and_gan_grouping(tmp_path):
    copy_examples(tmp_path)
    jobs = _plan(
        tmp_path,
        [
            line("tree", ["1", "2"], seed=2, patch_size=7),
            line("lake", ["1"], method="gan", iters=40),
            line("lake", ["2", "3"], method="gan", iters=40, name="lake-more"),
            line("lake", ["2"], method="gan", iters=40, seed=1, name="lake-seed1"),
        ],
        {"seed": 5},
    )
    analogy_jobs = [j for j in jobs if j.method == "analogy"]
    gan_jobs = [j for j in jobs if j.method == "gan"]
    assert [j.outputs[0].path for j in analogy_jobs] == [
        tmp_path / "out" / "tree" / "img" / "1.png",
        tmp_path / "out" / "tree" / "img" / "2.png",
    ]
    assert analogy_jobs[0].seed == 2 and analogy_jobs[0].config == PatchConfig(patch_size=7)
    # lines 2 and 3 share photo, size, seed and schedule: one model, one job; line 4 another
    assert len(gan_jobs) == 2
    shared = next(j for j in gan_jobs if len(j.outputs) == 3)
    assert shared.lines == [2, 3] and shared.seed == 5
    assert [o.path.relative_to(tmp_path / "out").as_posix() for o in shared.outputs] == [
        "lake/img/1_gan.png",
        "lake-more/2_gan.png",
        "lake-more/3_gan.png",
    ]
    other = next(j for j in gan_jobs if j is not shared)
    assert other.model_dir != shared.model_dir and other.model_dir.parent == shared.model_dir.parent
    assert shared.config.iters == 40 and shared.config.full_size_iters == 7  # 40 * 300 / 1600
    assert shared.max_size == 64


def test_train_config_scales_the_schedule_unless_told():
    base = TrainConfig()
    short = train_config({"iters": 160})
    assert short.full_size_iters == base.full_size_iters // 10
    assert short.augment.ramp_iters == base.augment.ramp_iters // 10
    assert train_config({"iters": 160, "full_size_iters": 0}).full_size_iters == 0
    assert train_config({}) == base


def test_two_lines_writing_one_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"line 2: its output .*1.png is also written by .*line 1"):
        _plan(tmp_path, [line("tree", ["1"]), line("tree", ["1"], seed=3)])
    # both methods on one photo write different files
    assert len(_plan(tmp_path, [line("tree", ["1"]), line("tree", ["1"], method="gan")])) == 2


def test_two_targets_of_one_line_writing_one_file_is_an_error(tmp_path):
    cond = tmp_path / "tree" / "cond"
    both = {**line("tree", []), "targets": ["tree/cond/1.png", "tree/cond/1.jpg"]}
    with pytest.raises(InputError) as e:
        _plan(tmp_path, [both])
    assert str(e.value) == (
        f"manifest line 1: its targets {cond / '1.png'} and {cond / '1.jpg'} share the output "
        "name 1.png; rename one of the two target files"
    )
    with pytest.raises(InputError, match=r"^manifest line 1: it lists the target .*1.png twice"):
        _plan(tmp_path, [line("tree", ["1", "1"])])


def test_keys_follow_contents_and_settings(tmp_path):
    copy_examples(tmp_path)
    (job,) = _plan(tmp_path, [line("tree", ["1"])])
    key = job.outputs[0].key
    assert _plan(tmp_path, [line("tree", ["1"])])[0].outputs[0].key == key  # stable
    assert _plan(tmp_path, [line("tree", ["1"], seed=1)])[0].outputs[0].key != key
    assert _plan(tmp_path, [line("tree", ["1"], fine_iters=5)])[0].outputs[0].key != key
    # a target whose content changed, under the same name
    (tmp_path / "tree" / "cond" / "1.png").write_bytes(
        (tmp_path / "tree" / "cond" / "2.png").read_bytes()
    )
    assert _plan(tmp_path, [line("tree", ["1"])])[0].outputs[0].key != key
    # done outputs are dropped only when the file exists too
    done = {job.outputs[0].path: key}
    assert pending_jobs([job], done) == ([job], 0)
    job.outputs[0].path.parent.mkdir(parents=True)
    job.outputs[0].path.write_bytes(b"png")
    assert pending_jobs([job], done) == ([], 1)


def test_make_plan_counts(tmp_path):
    copy_examples(tmp_path)
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [line("tree", ["1", "2"]), line("lake", ["3"])])
    plan = make_plan(manifest, tmp_path / "out")
    assert (len(plan.jobs), plan.skipped, plan.total) == (3, 0, 3)


def test_default_names_never_leave_out(tmp_path):
    copy_examples(tmp_path)
    (tmp_path / "m").mkdir()
    out = tmp_path / "out"
    lines = [
        {**line("tree", ["1"]), "image": "../tree/img.png", "targets": ["../tree/cond/1.png"]},
        {**line("lake", ["1"]), "image": "../m/../lake/img.png"},
        {**line("lake", ["2"]), "image": "sub/../../tree/img.png"},
    ]
    manifest = write_jsonl(tmp_path / "m" / "ok.jsonl", lines)
    jobs = plan_jobs(read_manifest(manifest), out, manifest.parent)
    # outside the manifest's folder: the photo's last folder and stem, as for absolute paths
    assert [j.outputs[0].path for j in jobs] == [
        out / "tree" / "img" / "1.png",
        out / "lake" / "img" / "1.png",
        out / "tree" / "img" / "2.png",
    ]
    assert [j.name for j in jobs] == ["tree/img/1.png", "lake/img/1.png", "tree/img/2.png"]
    # inside it, ".." is resolved too; one photo under two spellings is one output folder
    inside = [line("tree", ["1"]), {**line("tree", ["1"]), "image": "lake/../tree/img.png"}]
    with pytest.raises(InputError, match=r"line 2: its output .*tree/img/1.png is also written"):
        _plan(tmp_path, inside)


def test_out_must_be_a_folder(tmp_path):
    copy_examples(tmp_path)
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [line("tree", ["1"])])
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="file: it is a file, not a folder; give a folder"):
        make_plan(manifest, tmp_path / "file")
    with pytest.raises(InputError, match=f"sub: {tmp_path / 'file'} is a file, not a folder"):
        make_plan(manifest, tmp_path / "file" / "sub")
    assert make_plan(manifest, tmp_path / "new" / "out").total == 1  # made when it runs
