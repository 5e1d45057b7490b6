"""[mapping.filters] end to end: excluded assets are counted with their rule in the plan (table,
JSON, run summary), never pruned (also once gone from the source), validated at load (exit 2
naming the key), and ``only_referenced`` asks a source that can tell (Contentstack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.errors import ConfigError
from pipeline.cli import main
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.report import plan_json, plan_table
from pipeline.run import execute_job, plan_job
from state.store import StateStore
from tests.pipeline.helpers import CS_KEY, CS_TOKEN

CS = "http://cs.emulator"


def job_file(tmp_path: Path, source: str, target: str, filters: str = "",
             run: str = "") -> Path:
    path = tmp_path / "job.toml"
    section = f"[mapping.filters]\n{filters}\n" if filters else ""
    path.write_text(f"[source]\n{source}\n[target]\n{target}\n{section}"
                    f'[run]\nstate = "{tmp_path / "state.db"}"\n{run}', encoding="utf-8")
    return path


def local_job(tmp_path: Path, filters: str = "") -> tuple[Path, Path, Path]:
    source, dest = tmp_path / "library", tmp_path / "mirror"
    return source, dest, job_file(tmp_path, f'connector = "local"\npath = "{source}"\n',
                                  f'connector = "local"\npath = "{dest}"\n', filters)


def library(source: Path) -> None:
    for rel, data in {"photos/a.jpg": b"a" * 100, "drafts/b.jpg": b"b" * 100,
                      "drafts/deep/c.jpg": b"c" * 100, "video/big.mp4": b"v" * 5000,
                      "notes.txt": b"n" * 10}.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)


async def test_the_plan_counts_excluded_assets_by_rule(tmp_path: Path) -> None:
    source, dest, path = local_job(tmp_path, 'exclude = ["drafts/**"]\nmax_size = "1kB"\n'
                                             'content_types = ["image/*", "video/*"]\n')
    library(source)
    (source / ".DS_Store").write_bytes(b"finder")  # the source's own exclusion, kept apart
    job = load_job(path, env={})

    plan = await plan_job(job)
    data = json.loads(plan_json(plan))
    summary = data["summary"]
    assert summary["excluded"] == 5
    assert summary["excluded_by_rule"] == {
        "mapping.filters.content_types": 1, "mapping.filters.exclude": 2,
        "mapping.filters.max_size": 1, "source": 1}
    assert summary["create"] == 1
    by_path = {i["path"]: i for i in data["items"] if i["kind"] == "asset"}
    assert by_path["drafts/deep/c.jpg"]["excluded_by"] == "mapping.filters.exclude"
    assert by_path["drafts/deep/c.jpg"]["op"] == Op.SKIP.value
    assert "'drafts/**'" in by_path["drafts/deep/c.jpg"]["reason"]
    assert "5,000 bytes, over 1,000 bytes" in by_path["video/big.mp4"]["reason"]
    assert by_path["notes.txt"]["excluded_by"] == "mapping.filters.content_types"
    assert by_path[".DS_Store"]["excluded_by"] == "source"
    assert "excluded_by" not in by_path["photos/a.jpg"]
    # folders that hold only excluded assets are not created
    assert {i["path"] for i in data["items"] if i["kind"] == "folder"} == {"photos"}
    table = plan_table(plan)
    assert ("5 excluded: 1 by the source, 1 by mapping.filters.content_types, 2 by "
            "mapping.filters.exclude, 1 by mapping.filters.max_size") in table

    run = await execute_job(job, "migrate")
    assert run.exit_code() == 0, run.text()
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")
                  if p.is_file() and not p.name.startswith(".assetferry")) == ["photos/a.jpg"]
    assert run.counts()["excluded"] == 5
    assert run.to_dict()["excluded_by_rule"]["mapping.filters.exclude"] == 2
    assert "2 by mapping.filters.exclude" in run.text().splitlines()[0]


async def test_a_new_exclude_rule_never_prunes_what_was_migrated(tmp_path: Path) -> None:
    source, dest, path = local_job(tmp_path)
    library(source)
    first = await execute_job(load_job(path, env={}), "sync")
    assert first.exit_code() == 0, first.text()
    assert (dest / "drafts" / "b.jpg").exists()

    _, _, path = local_job(tmp_path, 'exclude = ["drafts/**"]\n')
    job = load_job(path, env={})
    plan = await plan_job(job, prune=True)
    [b] = [a for a in plan.assets if a.path == "drafts/b.jpg"]
    assert b.op is Op.SKIP
    assert b.excluded_by == "mapping.filters.exclude"
    assert "migrated earlier: its copy stays in the target" in b.reason
    assert not [a for a in plan.assets if a.op is Op.DELETE]

    run = await execute_job(job, "sync", prune=True)
    assert run.exit_code() == 0, run.text()
    assert run.counts()["deleted"] == 0
    assert (dest / "drafts" / "b.jpg").exists()
    assert (dest / "drafts" / "deep" / "c.jpg").exists()
    # the ledger remembers why, so prune keeps the copy even once the source file is gone
    store = StateStore(job.run.state)
    try:
        rows = {r.path: r for r in store.items(run.route).values()}
    finally:
        store.close()
    assert (rows["drafts/b.jpg"].last_error or "").startswith(
        "excluded by mapping.filters.exclude")
    (source / "drafts" / "b.jpg").unlink()
    gone = await execute_job(job, "sync", prune=True)
    assert gone.exit_code() == 0, gone.text()
    assert gone.counts()["deleted"] == 0
    assert (dest / "drafts" / "b.jpg").exists()
    [kept] = [o for o in gone.outcomes if o.path == "drafts/b.jpg"]
    assert "excluded when last listed" in kept.reason

    # without the rule, c.jpg is an unchanged asset again (no upload) and its note goes
    _, _, path = local_job(tmp_path)
    back = await execute_job(load_job(path, env={}), "sync")
    assert back.exit_code() == 0, back.text()
    assert back.counts()["created"] == 0
    store = StateStore(job.run.state)
    try:
        rows = {r.path: r for r in store.items(back.route).values()}
    finally:
        store.close()
    assert rows["drafts/deep/c.jpg"].last_error is None


@pytest.mark.parametrize(("line", "key", "words"), [
    ('max_size = "50 parsecs"', "mapping.filters.max_size", "not a size"),
    ("min_size = -1", "mapping.filters.min_size", "negative"),
    ('min_size = "2MB"\nmax_size = "1MB"', "mapping.filters", "over max_size"),
    ('updated_since = "last week"', "mapping.filters.updated_since", "2026-01-31"),
    ('content_types = ["image"]', "mapping.filters.content_types", "image/*"),
    ('exclude = ["photo[1.jpg"]', "mapping.filters.exclude", "without its ']'"),
    ('exclude = "drafts/**"', "mapping.filters.exclude", "must be a list, e.g."),
    ('exclud = ["x"]', "mapping.filters.exclud", "unknown key"),
])
def test_bad_filters_are_exit_2_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, key: str,
        words: str) -> None:
    source, _, path = local_job(tmp_path, line)
    source.mkdir()
    with pytest.raises(ConfigError) as err:
        load_job(path, env={})
    assert f"  {key}" in str(err.value)
    assert words in str(err.value)
    assert main(["plan", "-c", str(path)]) == 2
    assert key in capsys.readouterr().err


def test_toml_dates_and_sizes_load(tmp_path: Path) -> None:
    source, _, path = local_job(tmp_path, "updated_since = 2026-01-31\nmax_size = 5000\n"
                                          'min_size = "1 KiB"\n')
    source.mkdir()
    rules = load_job(path, env={}).mapping.filters.rules()
    assert rules.updated_since is not None
    assert rules.updated_since.isoformat() == "2026-01-31T00:00:00+00:00"
    assert (rules.min_size, rules.max_size) == (1024, 5000)


def test_only_referenced_on_a_source_that_cannot_tell_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, _, path = local_job(tmp_path, "only_referenced = true\n")
    library(source)
    assert main(["plan", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mapping.filters.only_referenced" in err
    assert "cannot tell which assets entries reference" in err
    assert "Traceback" not in err


async def test_only_referenced_migrates_what_contentstack_entries_reference(
        tmp_path: Path) -> None:
    cs = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    try:
        used = cs.add_asset("used.png", b"used")
        cs.add_asset("orphan.png", b"orphan")
        draft = cs.add_asset("draft.png", b"draft")
        cs.add_reference(used, "blt_entry_home", locale="en-us")
        cs.add_reference(used, "blt_entry_home", locale="de-de")
        cs.add_reference(draft, "blt_entry_old")
        dest = tmp_path / "mirror"
        path = job_file(
            tmp_path, f'connector = "contentstack"\napi_key = "{CS_KEY}"\n'
                      f'management_token = "{CS_TOKEN}"\nbase_url = "{CS}"\n',
            f'connector = "local"\npath = "{dest}"\n',
            'only_referenced = true\nexclude = ["draft.*"]\n')
        job = load_job(path, env={})
        transports = {"source": in_process_transport(cs.app)}
        before = cs.requests
        plan = await plan_job(job, transports=transports)
        summary = json.loads(plan_json(plan))["summary"]
        assert summary["excluded_by_rule"] == {"mapping.filters.exclude": 1,
                                               "mapping.filters.only_referenced": 1}
        [orphan] = [a for a in plan.assets if a.path == "orphan.png"]
        assert orphan.reason == ("excluded by mapping.filters.only_referenced: no entry "
                                 "references it")
        # the excluded draft costs no references request: 2 reads, counted in the estimate
        assert plan.source_listing_requests == 2 + 2
        run = await execute_job(job, "migrate", transports=transports)
        assert run.exit_code() == 0, run.text()
        assert sorted(p.name for p in dest.iterdir() if p.suffix == ".png") == ["used.png"]
        assert cs.requests > before
    finally:
        cs.close()


def test_the_readme_filters_example_loads(tmp_path: Path) -> None:
    """The README's [mapping.filters] block is a valid job-file section (it cannot drift)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in readme.split("```toml\n")[1:] if b.startswith("[mapping.filters]")]
    filters = block.split("```")[0].removeprefix("[mapping.filters]\n")
    source, _, path = local_job(tmp_path, filters)
    source.mkdir()
    rules = load_job(path, env={}).mapping.filters.rules()
    assert rules.active
    assert (rules.min_size, rules.max_size) == (1000, 50_000_000)
