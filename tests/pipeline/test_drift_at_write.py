"""An edit made in the target after the plan's drift check, before our write reaches the
item (a long run), is drift too: right before a deletion (prune), a replacement of the file
or an update of the metadata, the target asset is read directly (one request) and compared
with the ledger's marker of our write, and a mismatch follows `[run] on_conflict` as the
plan's drift does (skip: kept, a conflict; fail: the run stops; source-wins: written).

Each target kind (Contentstack, Storyblok, Webflow emulators in process; a local folder) is
edited from the `on_plan` hook, between the plan and its execution."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.storyblok.emulator import StoryblokEmulator
from connectors.webflow.emulator import WebflowEmulator
from pipeline.cli import status_data
from pipeline.config import JobConfig, load_job
from pipeline.plan import Op, Plan
from pipeline.report import RunSummary
from pipeline.run import execute_job, plan_job
from state.store import ItemStatus, StateStore
from tests.pipeline.helpers import CS_SECTION, Recorder, job_toml, sb_section, wf_section

SB_SPACE = 288868932106411
SB_TOKEN = "sb-drift-at-write-token-3e9d"
WF_SITE = "6390c49674a71f84b51a08e1"
WF_TOKEN = "wf-drift-at-write-token-81c2"
WF_SECTION = wf_section(WF_SITE, WF_TOKEN)
LATER = "2099-01-01T00:00:00.000Z"
"""An update time long after our write: an edit made in the target (Storyblok and Webflow
name no version; their drift is told by size, then by update time)."""


@pytest.fixture
def wf() -> Iterator[WebflowEmulator]:
    e = WebflowEmulator(site_id=WF_SITE, token=WF_TOKEN, rate_limit_per_minute=None)
    yield e
    e.close()


@dataclass
class Side:
    """One target kind: its job section, transport, and how an editor changes asset ``name``
    there (``edit``) and what shows the edit is still there (``edited``)."""

    section: str
    transport: httpx.AsyncBaseTransport | None
    edit: Callable[[str], None]
    edited: Callable[[str], bool]
    exists: Callable[[str], bool]


def contentstack(cs: ContentstackEmulator) -> Side:
    def record(name: str) -> dict[str, Any]:
        [found] = [r for r in cs.assets.values() if r["filename"] == name]
        return found

    def edit(name: str) -> None:  # what a PUT of a title does: a new _version
        r = record(name)
        r.update(title="Edited in Contentstack", _version=r["_version"] + 1, updated_at=LATER)

    return Side(CS_SECTION, in_process_transport(cs.app), edit,
                lambda name: record(name)["title"] == "Edited in Contentstack",
                lambda name: any(r["filename"] == name for r in cs.assets.values()))


def storyblok(sb: StoryblokEmulator) -> Side:
    def record(name: str) -> dict[str, Any]:
        [found] = [a for a in sb.assets.values()
                   if a["short_filename"] == name and not a["deleted_at"]]
        return found

    def edit(name: str) -> None:
        record(name).update(alt="Edited in Storyblok", updated_at=LATER)

    return Side(sb_section(SB_SPACE, SB_TOKEN), in_process_transport(sb.app), edit,
                lambda name: record(name)["alt"] == "Edited in Storyblok",
                lambda name: any(a["short_filename"] == name and not a["deleted_at"]
                                 for a in sb.assets.values()))


def webflow(wf: WebflowEmulator) -> Side:
    def record(name: str) -> dict[str, Any]:
        [found] = [r for r in wf.assets.values() if r["originalFileName"] == name]
        return found

    def edit(name: str) -> None:
        record(name).update(altText="Edited in Webflow", lastUpdated=LATER)

    return Side(WF_SECTION, in_process_transport(wf.app), edit,
                lambda name: record(name)["altText"] == "Edited in Webflow",
                lambda name: any(r["originalFileName"] == name for r in wf.assets.values()))


def local(tmp_path: Path) -> Side:
    out = tmp_path / "out"

    def edit(name: str) -> None:
        with (out / "A" / name).open("a") as f:
            f.write("edited in the target\n")

    return Side(f'connector = "local"\npath = "{out}"\n', None, edit,
                lambda name: (out / "A" / name).read_text().endswith("edited in the target\n"),
                lambda name: (out / "A" / name).exists())


def write_library(root: Path) -> None:
    (root / "A").mkdir(parents=True, exist_ok=True)
    (root / "A" / "x.txt").write_text("one\n")
    (root / "A" / "y.txt").write_text("two\n")
    write_manifest(root)


def write_manifest(root: Path, alt: str = "Sea") -> None:
    (root / ".assetferry.json").write_text(json.dumps({"version": 1, "assets": {
        "A/x.txt": {"alt_text": alt, "title": "X"}, "A/y.txt": {"title": "Y"}}}))


def change_file(root: Path) -> None:
    (root / "A" / "x.txt").write_text("one, longer\n")


CHANGES: dict[str, tuple[Op, Callable[[Path], None]]] = {
    "file": (Op.REPLACE, change_file),
    "metadata": (Op.UPDATE, lambda root: write_manifest(root, alt="Sea at dusk")),
    "gone": (Op.DELETE, lambda root: (root / "A" / "x.txt").unlink()),
}


@pytest.fixture(params=["contentstack", "storyblok", "webflow", "local"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Side:
    kind = request.param
    if kind == "contentstack":
        return contentstack(request.getfixturevalue("cs"))
    if kind == "storyblok":
        return storyblok(request.getfixturevalue("sb"))
    if kind == "webflow":
        return webflow(request.getfixturevalue("wf"))
    return local(tmp_path)


def job_for(tmp_path: Path, side: Side, run: str = "") -> tuple[JobConfig, dict[str, Any]]:
    root = tmp_path / "lib"
    write_library(root)
    job = load_job(job_toml(tmp_path, f'connector = "local"\npath = "{root}"\n', side.section,
                            run=run), env={})
    return job, ({"target": side.transport} if side.transport is not None else {})


async def run_edited_after_plan(job: JobConfig, transports: dict[str, Any], side: Side,
                                op: Op) -> RunSummary:
    """A sync --prune whose plan finds x.txt undrifted (``op`` on it) and whose target copy
    is then edited before the run reaches it."""
    seen: list[Plan] = []

    def edit_after_plan(plan: Plan) -> None:
        [action] = [a for a in plan.assets if a.path == "A/x.txt"]
        assert (action.op, action.drift) == (op, False), action.reason
        seen.append(plan)
        side.edit("x.txt")

    summary = await execute_job(job, "sync", transports=transports, prune=True,
                                on_plan=edit_after_plan)
    assert seen, summary.text()
    return summary


@pytest.mark.parametrize("change", list(CHANGES))
async def test_an_edit_after_the_plan_is_not_overwritten_or_deleted(
        tmp_path: Path, side: Side, change: str) -> None:
    op, apply = CHANGES[change]
    if side.section == WF_SECTION and op is Op.REPLACE:
        pytest.skip("Webflow cannot replace a file (no replace endpoint, facts §3)")
    job, transports = job_for(tmp_path, side)
    first = await execute_job(job, "sync", transports=transports)
    assert first.exit_code() == 0, first.text()
    apply(tmp_path / "lib")

    summary = await run_edited_after_plan(job, transports, side, op)
    [outcome] = [o for o in summary.assets() if o.path == "A/x.txt"]
    assert outcome.op is Op.CONFLICT, (outcome.op, outcome.reason)
    assert "after the plan" in outcome.reason, outcome.reason
    assert summary.exit_code() == 1, summary.text()
    assert side.exists("x.txt")
    assert side.edited("x.txt"), "the target's edit is kept"
    assert side.exists("y.txt")

    # the ledger still holds our write's marker: the next plan sees the drift itself (not
    # an interrupted replace to send again)
    again = await plan_job(job, transports=transports, prune=True)
    [action] = [a for a in again.assets if a.path == "A/x.txt"]
    assert (action.op, action.drift) == (Op.CONFLICT, True), action.reason


async def test_on_conflict_fail_stops_the_run_at_an_edit_after_the_plan(
        tmp_path: Path) -> None:
    side = local(tmp_path)
    job, transports = job_for(tmp_path, side, run='on_conflict = "fail"\n')
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    (tmp_path / "lib" / "A" / "x.txt").unlink()
    summary = await run_edited_after_plan(job, transports, side, Op.DELETE)
    assert summary.exit_code() == 2, summary.text()
    assert "after the plan" in (summary.fatal or ""), summary.fatal
    assert side.edited("x.txt")


async def test_source_wins_writes_over_an_edit_after_the_plan(tmp_path: Path) -> None:
    side = local(tmp_path)
    job, transports = job_for(tmp_path, side, run='on_conflict = "source-wins"\n')
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    CHANGES["file"][1](tmp_path / "lib")
    summary = await run_edited_after_plan(job, transports, side, Op.REPLACE)
    assert summary.exit_code() == 0, summary.text()
    assert (tmp_path / "out" / "A" / "x.txt").read_text() == "one, longer\n"


async def test_one_direct_read_per_destructive_write_and_none_otherwise(
        tmp_path: Path, cs: ContentstackEmulator) -> None:
    """Contentstack: a replace costs one `GET /v3/assets/{uid}` before it; a create and a
    sync with nothing to do read no single asset."""
    target = Recorder(in_process_transport(cs.app))
    side = contentstack(cs)
    job, _ = job_for(tmp_path, side)
    transports = {"target": target}
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0

    def single_reads() -> list[str]:
        return [r.url.path for r in target.seen if r.method == "GET"
                and r.url.path.startswith("/v3/assets/blt")]

    assert single_reads() == [], "a create reads nothing first"
    target.seen.clear()
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    assert single_reads() == [], "a sync with nothing to do: listing requests only"
    CHANGES["file"][1](tmp_path / "lib")
    (tmp_path / "lib" / "A" / "z.txt").write_text("new\n")
    target.seen.clear()
    summary = await execute_job(job, "sync", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert (summary.counts()["replaced"], summary.counts()["created"]) == (1, 1)
    [uid] = [u for u, r in cs.assets.items() if r["filename"] == "x.txt"]
    assert single_reads() == [f"/v3/assets/{uid}"]


# --- a local target's metadata manifest --------------------------------------------------


def target_manifest(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "out" / ".assetferry.json").read_text())
    return data


async def test_a_hand_edit_of_a_local_targets_manifest_is_drift(tmp_path: Path) -> None:
    """The ledger keeps the fingerprint of the metadata we wrote into the manifest: a hand
    edit of its entry is drift (kept under "skip", the file not sent again under
    "source-wins", only its metadata), where it used to be overwritten by the next update."""
    side = local(tmp_path)
    job, transports = job_for(tmp_path, side)
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    quiet = await execute_job(job, "sync", transports=transports)
    assert quiet.exit_code() == 0, "what we wrote is not drift"
    assert quiet.counts()["updated"] == 0, quiet.text()

    manifest = target_manifest(tmp_path)
    manifest["assets"]["A/x.txt"]["title"] = "Edited by hand"
    (tmp_path / "out" / ".assetferry.json").write_text(json.dumps(manifest))
    write_manifest(tmp_path / "lib", alt="Sea at dusk")  # and the source's changes too
    plan = await plan_job(job, transports=transports)
    [action] = [a for a in plan.assets if a.path == "A/x.txt"]
    assert (action.op, action.drift) == (Op.CONFLICT, True), action.reason
    assert "metadata was edited there" in action.reason
    summary = await execute_job(job, "sync", transports=transports)
    assert summary.exit_code() == 1, summary.text()
    assert target_manifest(tmp_path)["assets"]["A/x.txt"]["title"] == "Edited by hand"

    inode = (tmp_path / "out" / "A" / "x.txt").stat().st_ino
    wins = job.model_copy(update={"run": job.run.model_copy(
        update={"on_conflict": "source-wins"})})
    won = await execute_job(wins, "sync", transports=transports)
    assert won.exit_code() == 0, won.text()
    assert (won.counts()["updated"], won.counts()["replaced"]) == (1, 0), won.text()
    entry = target_manifest(tmp_path)["assets"]["A/x.txt"]
    assert (entry["title"], entry["alt_text"]) == ("X", "Sea at dusk")
    assert (tmp_path / "out" / "A" / "x.txt").stat().st_ino == inode, "the file stays"
    after = await execute_job(job, "sync", transports=transports)
    assert after.exit_code() == 0, after.text()


async def test_a_file_adopted_after_a_kill_gets_its_whole_manifest_entry(
        tmp_path: Path) -> None:
    """A kill between a local file's link and its journal line leaves the file without a
    manifest entry and its ledger row in flight; the next run adopts it and writes its whole
    entry: metadata and source id."""
    side = local(tmp_path)
    job, transports = job_for(tmp_path, side)
    first = await execute_job(job, "sync", transports=transports)
    assert first.exit_code() == 0, first.text()
    manifest = target_manifest(tmp_path)
    assert manifest["assets"]["A/x.txt"]["source_id"] == "A/x.txt"
    del manifest["assets"]["A/x.txt"]
    (tmp_path / "out" / ".assetferry.json").write_text(json.dumps(manifest))
    with StateStore(job.run.state) as store:
        rec = store.item(first.route, "asset", "A/x.txt")
        assert rec is not None
        store.write([replace(rec, status=ItemStatus.IN_FLIGHT, intent="create",
                             target_id=None, target_url=None, target_marker=None)])

    summary = await execute_job(job, "sync", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    [outcome] = [o for o in summary.assets() if o.path == "A/x.txt"]
    assert "an interrupted run had created it" in outcome.reason, outcome.reason
    entry = target_manifest(tmp_path)["assets"]["A/x.txt"]
    assert (entry.get("source_id"), entry.get("title")) == ("A/x.txt", "X"), entry


# --- source-wins restores the source's whole state ---------------------------------------


def edit_every_field(side: Side, cs: ContentstackEmulator | None, sb: StoryblokEmulator | None,
                     wf: WebflowEmulator | None, out: Path) -> Callable[[], object]:
    """Edit, in the target, a field of x.txt that its source asset leaves empty (no title,
    no alt text); return what that field holds now (to compare after the run)."""
    if cs is not None:
        [uid] = [u for u, r in cs.assets.items() if r["filename"] == "x.txt"]
        cs.assets[uid].update(title="USER EDIT x.txt", description="user",
                              _version=cs.assets[uid]["_version"] + 1, updated_at=LATER)
        return lambda: (cs.assets[uid]["title"], cs.assets[uid]["description"])
    if sb is not None:
        [sid] = [i for i, a in sb.assets.items() if a["short_filename"] == "x.txt"]
        sb.assets[sid].update(alt="user alt", title="user title", copyright="user (c)",
                              updated_at=LATER)
        return lambda: (sb.assets[sid]["alt"], sb.assets[sid]["title"],
                        sb.assets[sid]["copyright"])
    if wf is not None:
        [wid] = [i for i, w in wf.assets.items() if w["originalFileName"] == "x.txt"]
        wf.assets[wid].update(altText="user alt", lastUpdated=LATER)
        return lambda: wf.assets[wid]["altText"]
    manifest = out / ".assetferry.json"
    data = json.loads(manifest.read_text())
    data["assets"]["A/x.txt"]["title"] = "USER EDIT x.txt"
    manifest.write_text(json.dumps(data))
    return lambda: json.loads(manifest.read_text())["assets"]["A/x.txt"].get("title")


AS_CREATED: dict[str, object] = {
    "contentstack": ("x.txt", ""),  # an untitled upload is titled with its file name
    "storyblok": (None, None, None),  # as the emulator stores an empty field
    "webflow": "",
    "local": None,
}


@pytest.mark.parametrize("file_changed", [False, True], ids=["metadata", "file"])
@pytest.mark.parametrize("kind", list(AS_CREATED))
async def test_source_wins_writes_back_a_field_the_source_leaves_empty(
        tmp_path: Path, request: pytest.FixtureRequest, kind: str, file_changed: bool) -> None:
    """Under "source-wins", an edited field of the target that the source asset has no value
    for goes back to what a create gives it (Contentstack: the file name as title, an empty
    description; Storyblok: empty alt/title/copyright; Webflow: empty altText; a local
    target: no title), by a metadata update and by a file replace alike; it used to keep
    the target's edit, then record it as ours (the next plan saw nothing to do)."""
    if kind == "webflow" and file_changed:
        pytest.skip("Webflow cannot replace a file (no replace endpoint, facts §3)")
    fixture = {"contentstack": "cs", "storyblok": "sb", "webflow": "wf"}.get(kind)
    emulators: dict[str, Any] = {name: request.getfixturevalue(name) if name == fixture else None
                                 for name in ("cs", "sb", "wf")}
    side = {"contentstack": lambda: contentstack(emulators["cs"]),
            "storyblok": lambda: storyblok(emulators["sb"]),
            "webflow": lambda: webflow(emulators["wf"]),
            "local": lambda: local(tmp_path)}[kind]()
    job, transports = job_for(tmp_path, side, run='on_conflict = "source-wins"\n')
    lib = tmp_path / "lib"
    (lib / ".assetferry.json").write_text(json.dumps({"version": 1, "assets": {
        "A/x.txt": {}, "A/y.txt": {"title": "Y"}}}))
    first = await execute_job(job, "sync", transports=transports)
    assert first.exit_code() == 0, first.text()
    held = edit_every_field(side, emulators["cs"], emulators["sb"], emulators["wf"],
                            tmp_path / "out")
    assert held() != AS_CREATED[kind]
    if file_changed:
        change_file(lib)
    won = await execute_job(job, "sync", transports=transports)
    assert won.exit_code() == 0, won.text()
    assert held() == AS_CREATED[kind], won.text()
    again = await plan_job(job, transports=transports)
    [action] = [a for a in again.assets if a.path == "A/x.txt"]
    assert action.op is Op.SKIP, action.reason


async def test_plan_under_fail_says_the_run_stops_and_exits_2_as_the_run_does(
        tmp_path: Path) -> None:
    """`plan` with `[run] on_conflict = "fail"` and a drifted asset says what the run does
    (it stops before any write, nothing written) and exits 2 like the run; it used to say
    "left as it is" and exit 1 while the run exited 2."""
    from pipeline.report import plan_exit_code, plan_json, plan_table

    side = local(tmp_path)
    job, transports = job_for(tmp_path, side, run='on_conflict = "fail"\n')
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    side.edit("x.txt")
    plan = await plan_job(job, transports=transports)
    [action] = [a for a in plan.assets if a.path == "A/x.txt"]
    assert (action.op, action.drift) == (Op.CONFLICT, True), action.reason
    assert "the run stops before any write, nothing is written" in action.reason
    assert "left as it is" not in action.reason
    assert plan_exit_code(plan) == 2
    table = plan_table(plan)
    assert "the run would stop here: 1 asset changed in the target" in table, table
    assert "nothing was written" in table
    assert json.loads(plan_json(plan))["summary"]["stops"] == plan.stop

    run = await execute_job(job, "sync", transports=transports)
    assert run.exit_code() == 2, run.text()
    assert run.fatal == plan.stop, "the plan says what the run says"
    assert side.edited("x.txt"), "nothing written"
    skip = job.model_copy(update={"run": job.run.model_copy(update={"on_conflict": "skip"})})
    held = await plan_job(skip, transports=transports)
    assert (held.stop, plan_exit_code(held)) == (None, 1), "skip holds it back: exit 1"


async def test_a_run_stopped_at_an_edit_leaves_no_intent_and_counts_nothing_it_did_not_write(
        tmp_path: Path) -> None:
    """The last testers' finding: a run stopped by `on_conflict = "fail"` at an edit seen
    right before a replace. The uploads queued behind it (their intents committed ahead,
    group commit) never started: their rows are as before, not "in flight"; the edited
    asset's row, left as it was, is not counted as done by this run; `status` shows them
    pending."""
    side = local(tmp_path)
    job, transports = job_for(tmp_path, side, run='on_conflict = "fail"\nconcurrency = 1\n')
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    change_file(tmp_path / "lib")
    for i in range(3):  # after A/x.txt in the plan's order: queued behind it
        (tmp_path / "lib" / "A" / f"z{i}.txt").write_text(f"new {i}\n")
    summary = await run_edited_after_plan(job, transports, side, Op.REPLACE)
    assert summary.exit_code() == 2, summary.text()
    store = StateStore(job.run.state, read_only=True)
    try:
        rows = store.items(summary.route)
        last = status_data(store, summary.route)["last_run"]
    finally:
        store.close()
    assert all(rows[("asset", f"A/z{i}.txt")].status is not ItemStatus.IN_FLIGHT
               for i in range(3)), rows
    assert rows[("asset", "A/x.txt")].last_run_id != last["id"], "not this run's write"
    assert (last["done"], last["begun_or_about_to_begin"], last["pending"]) == (0, 0, 4), last


async def replace_cut_off_by_a_kill(tmp_path: Path, side: Side
                                     ) -> tuple[JobConfig, dict[str, Any]]:
    """A synced library whose A/x.txt changed in the source, and a replace of it cut off by a
    kill: its ledger row in flight with the intent "replace". Returns the job and transports."""
    job, transports = job_for(tmp_path, side)
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    change_file(tmp_path / "lib")
    store = StateStore(job.run.state)
    [route] = store.routes()
    row = store.items(route)[("asset", "A/x.txt")]
    store.write([replace(row, status=ItemStatus.IN_FLIGHT, intent="replace")])  # the kill
    store.close()
    return job, transports


@pytest.mark.parametrize("when", ["plan", "write"])
async def test_an_interrupted_replace_is_checked_for_drift_on_resume(
        tmp_path: Path, when: str) -> None:
    """The last testers' finding: a replace cut off by a kill (its intent in the ledger) was
    sent again on resume without the drift check a first try makes, so an edit made in the
    target meanwhile was overwritten. Resumed, it is checked as a first try is (the plan's
    listing, then right before the write): under "skip" a conflict, the edit kept."""
    side = local(tmp_path)
    job, transports = await replace_cut_off_by_a_kill(tmp_path, side)
    if when == "plan":
        side.edit("x.txt")
        summary = await execute_job(job, "sync", transports=transports)
    else:
        def edit_after_plan(plan: Plan) -> None:
            [action] = [a for a in plan.assets if a.path == "A/x.txt"]
            assert action.op is Op.REPLACE, action.reason
            side.edit("x.txt")

        summary = await execute_job(job, "sync", transports=transports,
                                    on_plan=edit_after_plan)
    [outcome] = [o for o in summary.assets() if o.path == "A/x.txt"]
    assert outcome.op is Op.CONFLICT, (outcome.op, outcome.reason)
    assert side.edited("x.txt"), "the target's edit is kept"


async def test_a_resumed_replace_that_had_landed_is_not_taken_for_an_edit(
        tmp_path: Path) -> None:
    """A kill after the new file landed, before its result was recorded: the target holds
    our new file (another version than the ledger's marker, the new file's size). That is
    our write, not an edit: the resumed replace finishes."""
    side = local(tmp_path)
    job, transports = await replace_cut_off_by_a_kill(tmp_path, side)
    (tmp_path / "out" / "A" / "x.txt").write_text("one, longer\n")  # what the replace sent
    summary = await execute_job(job, "sync", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert summary.counts()["replaced"] == 1, summary.text()
