"""Publishing into Contentstack, end to end against its emulator: where the job file says
(``[target] publish``), or where a Contentstack source had each asset published; counted in the
plan's estimate; checked against the target's environments and locales (exit 2 naming the key);
a failed publish fails its item and the next run publishes without uploading again."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.errors import ConfigError
from pipeline import registry
from pipeline.cli import main
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.report import plan_json, plan_table
from pipeline.run import execute_job, plan_job
from tests.pipeline.helpers import CS_KEY, CS_TOKEN, EMU_TOKEN, cs_job_file, job_toml, run_migrate

CS = "http://cs.emulator"
SOURCE_KEY = "blt5ource000000001"
PUBLISH = 'publish = {environments = ["production"], locales = ["en-us", "de-de"]}\n'


@pytest.fixture
def cs() -> Iterator[ContentstackEmulator]:
    e = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None,
                             environments=("production", "staging"),
                             fallback_locales={"de-de": "en-us"})
    yield e
    e.close()


def cs_section(key: str = CS_KEY, extra: str = "") -> str:
    return (f'connector = "contentstack"\napi_key = "{key}"\nmanagement_token = "{CS_TOKEN}"\n'
            f'base_url = "{CS}"\nrequests_per_second = 1000\n{extra}')


def job_file(tmp_path: Path, source: str, target: str) -> Path:
    return job_toml(tmp_path, source, target)


def local_library(tmp_path: Path) -> str:
    lib = tmp_path / "library"
    (lib / "brand").mkdir(parents=True)
    (lib / "brand" / "logo.png").write_bytes(b"\x89PNG logo")
    (lib / "readme.txt").write_bytes(b"hello")
    return f'connector = "local"\npath = "{lib}"\n'


async def read_back(cs: ContentstackEmulator, uid: str) -> set[tuple[str, str]]:
    """``(environment name, locale)`` pairs the emulator's API lists for asset ``uid``."""
    headers = {"api_key": CS_KEY, "authorization": CS_TOKEN}
    async with httpx.AsyncClient(transport=in_process_transport(cs.app), base_url=CS,
                                 headers=headers) as client:
        asset = (await client.get(f"/v3/assets/{uid}")).json()["asset"]
        names = {e["uid"]: e["name"]
                 for e in (await client.get("/v3/environments")).json()["environments"]}
    return {(names[p["environment"]], p["locale"]) for p in asset["publish_details"]}


async def test_publish_where_the_job_file_says_counted_in_the_estimate(
        tmp_path: Path, cs: ContentstackEmulator) -> None:
    job = load_job(job_file(tmp_path, local_library(tmp_path), cs_section(extra=PUBLISH)),
                   env={})
    transports = {"target": in_process_transport(cs.app)}
    plan = await plan_job(job, transports=transports)
    summary = json.loads(plan_json(plan))["summary"]
    assert summary["to_publish"] == 2
    # 1 folder + 2 uploads + 2 publish requests (both locales in one request each)
    assert summary["estimated_requests"] == 1 + 2 + 2
    assert "i publish to production (de-de, en-us)" in plan_table(plan)

    run = await execute_job(job, "migrate", transports=transports)
    assert run.exit_code() == 0, run.text()
    assert len(cs.assets) == 2
    for uid in cs.assets:
        assert await read_back(cs, uid) == {("production", "en-us"), ("production", "de-de")}
    assert len(cs.publish_requests) == 2

    again = await plan_job(job, transports=transports)
    assert {a.op for a in again.assets} == {Op.SKIP}, "published once, nothing owed"


def test_a_publication_to_an_environment_the_target_lacks_is_exit_2(
        tmp_path: Path, cs: ContentstackEmulator, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    bad = 'publish = {environments = ["prod"], locales = ["en-us", "fr-fr"]}\n'
    path = job_file(tmp_path, local_library(tmp_path), cs_section(extra=bad))
    real = registry.open_connector

    def with_emulator(config: object, **kwargs: object) -> object:
        if kwargs.get("role") == "target":
            kwargs["transport"] = in_process_transport(cs.app)
        return real(config, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("pipeline.run.open_connector", with_emulator)
    assert main(["plan", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "target.publish.environments: the target has no environment 'prod'" in err
    assert "(it has: production, staging)" in err
    assert "target.publish.locales: the target has no locale 'fr-fr'" in err
    assert not cs.assets


@pytest.mark.parametrize(("text", "words"), [
    ('publish = {environments = ["production"]}', "give both environments and locales"),
    ('publish = {environments = ["production"], locales = [""]}', "a name is empty"),
    ('publish = {environment = ["production"], locales = ["en-us"]}', "unknown key"),
])
def test_bad_publish_tables_are_refused_at_load(tmp_path: Path, text: str, words: str) -> None:
    path = job_file(tmp_path, local_library(tmp_path), cs_section(extra=text + "\n"))
    with pytest.raises(ConfigError, match=r"target\.publish") as err:
        load_job(path, env={})
    assert words in str(err.value)


def test_publish_on_a_source_is_refused(tmp_path: Path) -> None:
    path = job_file(tmp_path, cs_section(extra=PUBLISH), 'connector = "local"\npath = "x"\n')
    with pytest.raises(ConfigError, match=r"source\.publish: only a target publishes"):
        load_job(path, env={})


class FailPublish(httpx.AsyncBaseTransport):
    """The emulator, but the first ``times`` publish requests are refused (422)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, times: int) -> None:
        self.inner, self.left = inner, times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/publish") and self.left > 0:
            self.left -= 1
            return httpx.Response(422, json={"error_message": "Publishing is paused.",
                                             "error_code": 422, "errors": {}})
        return await self.inner.handle_async_request(request)


async def test_a_failed_publish_fails_the_item_and_a_resume_publishes_without_uploading(
        tmp_path: Path, cs: ContentstackEmulator) -> None:
    job = load_job(job_file(tmp_path, local_library(tmp_path), cs_section(extra=PUBLISH)),
                   env={})
    inner = in_process_transport(cs.app)
    first = await execute_job(job, "migrate", transports={"target": FailPublish(inner, 1)})
    assert first.exit_code() == 1
    [failed] = first.failed()
    assert "Publishing is paused" in failed.reason
    assert len(cs.assets) == 2, "both uploaded; one not published"
    versions = {uid: rec["_version"] for uid, rec in cs.assets.items()}

    plan = await plan_job(job, transports={"target": inner})
    [owed] = [a for a in plan.assets if a.op is not Op.SKIP]
    assert owed.op is Op.UPDATE
    assert owed.publish_only
    assert "not published (" in owed.reason
    assert "nothing is uploaded" in owed.reason
    assert plan.estimated_requests == 1, "the publish request only"

    again = await execute_job(job, "migrate", transports={"target": inner})
    assert again.exit_code() == 0, again.text()
    assert again.counts()["bytes"] == 0
    assert len(cs.assets) == 2
    assert {uid: rec["_version"] for uid, rec in cs.assets.items()} == versions
    for uid in cs.assets:
        assert await read_back(cs, uid) == {("production", "en-us"), ("production", "de-de")}


async def test_publishing_added_after_a_migration_publishes_without_uploading(
        tmp_path: Path, cs: ContentstackEmulator) -> None:
    transports = {"target": in_process_transport(cs.app)}
    source = local_library(tmp_path)
    first = await execute_job(load_job(job_file(tmp_path, source, cs_section()), env={}),
                              "migrate", transports=transports)
    assert first.exit_code() == 0, first.text()
    assert not cs.publish_requests
    job = load_job(job_file(tmp_path, source, cs_section(extra=PUBLISH)), env={})
    run = await execute_job(job, "sync", transports=transports)
    assert run.exit_code() == 0, run.text()
    assert (run.counts()["updated"], run.counts()["created"], run.counts()["bytes"]) == (2, 0, 0)
    assert len(cs.publish_requests) == 2
    for uid in cs.assets:
        assert await read_back(cs, uid) == {("production", "en-us"), ("production", "de-de")}


async def test_contentstack_to_contentstack_carries_publish_details(
        tmp_path: Path, cs: ContentstackEmulator) -> None:
    src = ContentstackEmulator(api_key=SOURCE_KEY, management_token=CS_TOKEN, rate_limit=None,
                               environments=("production", "qa"),
                               fallback_locales={"de-de": "en-us", "fr-fr": "en-us"})
    try:
        logo = src.add_asset("logo.png", b"\x89PNG logo")
        src.publish(logo, ["production"], ["en-us", "de-de"])
        src.publish(logo, ["qa"], ["en-us"])
        src.add_asset("draft.png", b"\x89PNG draft")
        fr = src.add_asset("fr.png", b"\x89PNG fr")
        src.publish(fr, ["production"], ["fr-fr"])
        job = load_job(job_file(tmp_path, cs_section(SOURCE_KEY), cs_section()), env={})
        transports = {"source": in_process_transport(src.app),
                      "target": in_process_transport(cs.app)}
        plan = await plan_job(job, transports=transports)
        by_path = {a.path: a for a in plan.assets}
        assert by_path["logo.png"].publish is not None
        assert by_path["logo.png"].publish.pairs == {("production", "en-us"),
                                                     ("production", "de-de")}
        assert any("not published to qa (en-us) as in the source: the target has no "
                   "environment 'qa'" in w for w in by_path["logo.png"].warnings)
        assert by_path["draft.png"].publish is None
        assert by_path["fr.png"].publish is None
        assert any("no locale 'fr-fr'" in w for w in by_path["fr.png"].warnings)

        run = await execute_job(job, "migrate", transports=transports)
        assert run.exit_code() == 0, run.text()
        uid = {rec["filename"]: u for u, rec in cs.assets.items()}
        assert await read_back(cs, uid["logo.png"]) == {("production", "en-us"),
                                                        ("production", "de-de")}
        assert await read_back(cs, uid["draft.png"]) == set()
        assert await read_back(cs, uid["fr.png"]) == set()
    finally:
        src.close()


@pytest.mark.slow
def test_a_run_killed_before_publishing_resumes_without_a_duplicate(
        tmp_path: Path, emulator: str) -> None:
    """SIGKILL right after the second upload, before its publish request: the resume uploads
    every asset exactly once and publishes each (read back over a real socket)."""
    lib = tmp_path / "library"
    lib.mkdir()
    for n in range(4):
        (lib / f"file{n}.txt").write_bytes(f"bytes {n}".encode())
    job = cs_job_file(tmp_path, lib, emulator, concurrency=1)
    text = job.read_text(encoding="utf-8").replace(
        "requests_per_second = 500\n",
        'requests_per_second = 500\npublish = {environments = ["development"], '
        'locales = ["en-us"]}\n')
    job.write_text(text, encoding="utf-8")
    killed = run_migrate(job, {"CS_TOKEN": EMU_TOKEN}, "publish.before:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    final = run_migrate(job, {"CS_TOKEN": EMU_TOKEN})
    assert final.returncode == 0, final.stdout + final.stderr[-3000:]

    headers = {"api_key": CS_KEY, "authorization": EMU_TOKEN}
    with httpx.Client(base_url=emulator, headers=headers, timeout=10) as client:
        assets = client.get("/v3/assets").json()["assets"]
        [dev] = [e["uid"] for e in client.get("/v3/environments").json()["environments"]
                 if e["name"] == "development"]
    assert sorted(a["filename"] for a in assets) == [f"file{n}.txt" for n in range(4)]
    for a in assets:
        assert [(p["environment"], p["locale"]) for p in a["publish_details"]] == [
            (dev, "en-us")], a["filename"]
