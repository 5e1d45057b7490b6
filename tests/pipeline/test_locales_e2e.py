"""End to end: a Storyblok space with 3 locales (en default, de, fr; alt texts and titles per
locale) into Webflow (locales declared) and into Contentstack (no localized asset metadata).

Every localized value either lands in the target, read back through the target emulator's
own API, or is named (its locale and field) in a warning on that asset's plan line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.errors import AuthError, ConfigError
from connectors.storyblok.emulator import StoryblokEmulator
from connectors.webflow.emulator import WebflowEmulator
from pipeline.cli import main
from pipeline.config import load_job
from pipeline.plan import Op, Plan
from pipeline.run import execute_job, plan_job
from tests.pipeline.helpers import CS_KEY, CS_SECTION, CS_TOKEN, sb_section, wf_section

SPACE = 288868932106293
SITE = "6390c49674a71f84b51a08d8"
WF_TOKEN = "wf-locales-token-1c9e"
DE, FR = "65427cf400e02b306eaa04a0", "65427cf400e02b306eaa04a1"
PNG = b"\x89PNG\r\n\x1a\n"

SB_SECTION = sb_section(SPACE, "sb-t")
WF_SECTION = wf_section(SITE, WF_TOKEN, f'{{de-DE = "{DE}", fr-FR = "{FR}"}}')
WF_SITE_SECTION = wf_section(SITE, WF_TOKEN, '"site"')
"""The site's locales, read with Get Site: the job file names no locale id."""

# filename -> locale ("" = en, the default) -> field -> value
SPACE_TEXT: dict[str, dict[str, dict[str, str]]] = {
    "harbour.png": {"": {"title": "Harbour", "alt_text": "Boats in a harbour"},
                    "de": {"title": "Hafen", "alt_text": "Boote im Hafen"},
                    "fr": {"title": "Port", "alt_text": "Bateaux au port"}},
    "hill.png": {"": {"title": "Hill"},
                 "de": {"alt_text": "Ein grüner Hügel"},
                 "fr": {"title": "Colline", "alt_text": "Une colline verte"}},
    "map.png": {"de": {"title": "Karte"}, "fr": {"alt_text": "Une carte"}},
}
_WIRE = {"title": "title", "alt_text": "alt"}


@pytest.fixture
def storyblok() -> Iterator[StoryblokEmulator]:
    emu = StoryblokEmulator(space_id=SPACE, token="sb-t", rate_limit=None)
    for i, (name, text) in enumerate(SPACE_TEXT.items()):
        meta = {f"{_WIRE[f]}__i18n__{code}": v
                for code, fields in text.items() if code for f, v in fields.items()}
        emu.add_asset(name, PNG + bytes([i]), alt=text[""].get("alt_text") if "" in text
                      else None, title=text.get("", {}).get("title"), meta_data=meta,
                      content_type="image/png")
    yield emu
    emu.close()


def job(tmp_path: Path, target: str, mapping: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(f"[source]\n{SB_SECTION}\n[target]\n{target}\n"
                    f"[mapping.locales]\n{mapping}\n"
                    f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
    return path


def check(plan: Plan, landed: dict[str, set[tuple[str, str, str]]]) -> int:
    """Each source value is in ``landed[filename]`` as (locale, field, value), or a warning on
    its asset names its locale and field. Returns how many were warned."""
    warnings = {a.path: a.warnings for a in plan.assets}
    warned = 0
    for name, text in SPACE_TEXT.items():
        for code, fields in text.items():
            for field, value in fields.items():
                if (code, field, value) in landed[name]:
                    continue
                label = field.replace("_", " ")
                lines = warnings[name]
                if code:
                    named = [w for w in lines if w.startswith(f"locale {code}") and label in w]
                    lost = any("dropped" in w.split(";")[0] for w in named) or (
                        any("folded" in w for w in named)  # into a field then dropped
                        and f"{field} dropped: the target has no such field" in lines)
                else:
                    lost = any(w.startswith(f"{field} dropped") for w in lines)
                assert lost, (name, code, field, lines)
                warned += 1
    return warned


@pytest.mark.parametrize("target", [WF_SECTION, WF_SITE_SECTION], ids=["ids", "site"])
async def test_three_locales_into_webflow(tmp_path: Path, storyblok: StoryblokEmulator,
                                          target: str) -> None:
    wf = WebflowEmulator(site_id=SITE, token=WF_TOKEN, locales={DE: "de-DE", FR: "fr-FR"},
                         rate_limit_per_minute=None)
    try:
        config = load_job(job(tmp_path, target,
                              'default = "en"\ncodes = {de = "de-DE", fr = "fr-FR"}\n'),
                          env={})
        transports = {"source": in_process_transport(storyblok.app),
                      "target": in_process_transport(wf.app)}
        plan = await plan_job(config, transports=transports)
        assert {a.op for a in plan.assets} == {Op.CREATE}
        result = await execute_job(config, "migrate", transports=transports)
        assert result.exit_code() == 0, result.text()

        landed: dict[str, set[tuple[str, str, str]]] = {}
        headers = {"Authorization": f"Bearer {WF_TOKEN}"}
        async with httpx.AsyncClient(transport=in_process_transport(wf.app),
                                     base_url="http://wf.emulator/v2/",
                                     headers=headers) as api:
            listing = (await api.get(f"sites/{SITE}/assets")).json()["assets"]
            for asset in listing:
                got = landed.setdefault(asset["originalFileName"], set())
                if asset.get("altText"):
                    got.add(("", "alt_text", asset["altText"]))
                for code, locale_id in (("de", DE), ("fr", FR)):
                    one = (await api.get(f"assets/{asset['id']}",
                                         params={"localeId": locale_id})).json()
                    if one.get("altText") and one["altText"] != asset.get("altText"):
                        got.add((code, "alt_text", one["altText"]))
    finally:
        wf.close()
    assert landed["harbour.png"] >= {("de", "alt_text", "Boote im Hafen"),
                                     ("fr", "alt_text", "Bateaux au port")}
    assert ("fr", "alt_text", "Une carte") in landed["map.png"]
    # Webflow keeps no title at all: the 2 default titles and the 4 localized ones are warned
    assert check(plan, landed) == 2 + 4


async def test_three_locales_into_contentstack_fold(tmp_path: Path,
                                                    storyblok: StoryblokEmulator) -> None:
    cs = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    try:
        config = load_job(job(tmp_path, CS_SECTION, 'default = "en"\nmissing = "fold"\n'),
                          env={})
        transports = {"source": in_process_transport(storyblok.app),
                      "target": in_process_transport(cs.app)}
        plan = await plan_job(config, transports=transports)
        result = await execute_job(config, "migrate", transports=transports)
        assert result.exit_code() == 0, result.text()

        landed: dict[str, set[tuple[str, str, str]]] = {}
        headers = {"api_key": CS_KEY, "authorization": CS_TOKEN}
        async with httpx.AsyncClient(transport=in_process_transport(cs.app),
                                     base_url="http://cs.emulator/v3/",
                                     headers=headers) as api:
            for uid in list(cs.assets):
                asset = (await api.get(f"assets/{uid}")).json()["asset"]
                got = landed.setdefault(asset["filename"], set())
                for field in ("title", "description"):
                    if asset.get(field):
                        # a value lands wherever the target keeps it: any locale, any field
                        got |= {(code, f, v) for code, fs in SPACE_TEXT[asset["filename"]]
                                .items() for f, v in fs.items() if v == asset[field]}
    finally:
        cs.close()
    # map.png has no default title: its German title is folded into it
    assert ("de", "title", "Karte") in landed["map.png"]
    assert check(plan, landed) > 0
    folded = [w for a in plan.assets for w in a.warnings if "folded into the default" in w]
    assert any(w.startswith("locale de: title folded") for w in folded)


async def test_a_code_the_target_lacks_is_refused_before_listing(
        tmp_path: Path, storyblok: StoryblokEmulator) -> None:
    config = load_job(job(tmp_path, WF_SECTION, 'codes = {de = "de-AT"}\n'), env={})
    with pytest.raises(ConfigError, match=r"mapping\.locales\.codes\.de: the target has no "
                                          r"locale de-AT \(its locales: de-DE, fr-FR\)"):
        await plan_job(config, transports={"source": in_process_transport(storyblok.app)})


async def test_a_code_the_site_lacks_is_refused_once_its_locales_are_read(
        tmp_path: Path, storyblok: StoryblokEmulator) -> None:
    wf = WebflowEmulator(site_id=SITE, token=WF_TOKEN, locales={DE: "de-DE"},
                         rate_limit_per_minute=None)
    try:
        config = load_job(job(tmp_path, WF_SITE_SECTION, 'codes = {fr = "fr-FR"}\n'), env={})
        with pytest.raises(ConfigError, match=r"codes\.fr: the target has no locale fr-FR "
                                              r"\(its locales: de-DE\)"):
            await plan_job(config, transports={"source": in_process_transport(storyblok.app),
                                               "target": in_process_transport(wf.app)})
        assert wf.assets == {}
    finally:
        wf.close()


async def test_site_locales_without_the_scope_say_what_to_do(
        tmp_path: Path, storyblok: StoryblokEmulator) -> None:
    wf = WebflowEmulator(site_id=SITE, token=WF_TOKEN, locales={DE: "de-DE"},
                         sites_read=False, rate_limit_per_minute=None)
    try:
        config = load_job(job(tmp_path, WF_SITE_SECTION, ""), env={})
        with pytest.raises(AuthError) as info:
            await plan_job(config, transports={"source": in_process_transport(storyblok.app),
                                               "target": in_process_transport(wf.app)})
    finally:
        wf.close()
    assert "missing_scopes" in str(info.value)
    assert "needs the sites:read scope" in str(info.value)
    assert 'locales = {de-DE = "<localeId>"}' in str(info.value)
    assert WF_TOKEN not in str(info.value)


async def test_webflow_source_reads_alt_texts_under_the_site_tags(tmp_path: Path) -> None:
    wf = WebflowEmulator(site_id=SITE, token=WF_TOKEN, locales={DE: "de-DE", FR: "fr-FR"},
                         rate_limit_per_minute=None)
    wf.add_asset("boats.png", PNG, alt="Boats", alt_by_locale={DE: "Boote", FR: "Bateaux"})
    dest = tmp_path / "out"
    path = tmp_path / "back.toml"
    path.write_text(f"[source]\n{WF_SITE_SECTION}\n[target]\nconnector = \"local\"\n"
                    f'path = "{dest}"\n[mapping.locales]\ncodes = {{de-DE = "de"}}\n'
                    f'[run]\nstate = "{tmp_path / "back.db"}"\n', encoding="utf-8")
    try:
        result = await execute_job(load_job(path, env={}), "migrate",
                                   transports={"source": in_process_transport(wf.app)})
    finally:
        wf.close()
    assert result.exit_code() == 0, result.text()
    entry = json.loads((dest / ".assetferry.json").read_text())["assets"]["boats.png"]
    assert entry["alt_text"] == "Boats"
    assert entry["locales"] == {"de": {"alt_text": "Boote"}, "fr-FR": {"alt_text": "Bateaux"}}


@pytest.mark.parametrize(("mapping", "says"), [
    ('missing = "keep"\n', "mapping.locales.missing: must be 'drop' or 'fold', got \"keep\""),
    ('codes = {de = "x", fr = "X"}\n', "mapping.locales.codes: codes.fr: de and fr "
                                       "both map to X"),
    ('default = "en"\ncodes = {en = "en-US"}\n', "codes.en: en is the default locale"),
    ('fold = true\n', "mapping.locales.fold: unknown key"),
])
@pytest.mark.parametrize("target", [WF_SECTION, wf_section(SITE, WF_TOKEN, '"all"')])
def test_bad_locale_rules_are_refused_when_the_job_loads(tmp_path: Path, mapping: str,
                                                         says: str, target: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_job(job(tmp_path, target, mapping), env={})
    assert says in str(info.value)
    if "all" in target:
        assert 'target.locales: locales must be "site"' in str(info.value)


@pytest.mark.parametrize(("target", "held"), [
    (WF_SITE_SECTION, "the site's secondary locales by tag (read when a plan runs); fields: "
                      "alt text"),
    (WF_SECTION, "de-DE, fr-FR; fields: alt text"),
    (CS_SECTION, "none (every locale's text is handled by missing)"),
])
def test_mappings_show_has_a_locales_section(tmp_path: Path, target: str, held: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = job(tmp_path, target, 'default = "en"\ncodes = {de = "de-DE"}\n')
    assert main(["mappings", "show", "-c", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (section,) = [s for s in data["sections"] if s["title"] == "Locales"]
    rows = {r["key"]: (r["rule"], r["origin"]) for r in section["rows"]}
    assert rows == {"(target)": (held, "default"), "default": ("en", "job file"),
                    "codes": ("de -> de-DE", "job file"), "missing": ("drop", "default")}
    assert main(["mappings", "show", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Locales [mapping.locales]" in out
    assert "* codes     de -> de-DE" in out


async def test_changed_locale_rules_update_the_migrated_assets_on_the_next_sync(
        tmp_path: Path, storyblok: StoryblokEmulator) -> None:
    dest = tmp_path / "out"
    local = f'connector = "local"\npath = "{dest}"\n'
    transports = {"source": in_process_transport(storyblok.app)}
    first = await execute_job(load_job(job(tmp_path, local, ""), env={}), "migrate",
                              transports=transports)
    assert first.exit_code() == 0, first.text()
    unchanged = await execute_job(load_job(job(tmp_path, local, ""), env={}), "sync",
                                  transports=transports)
    assert unchanged.counts()["updated"] == 0
    renamed = load_job(job(tmp_path, local, 'codes = {de = "de-DE"}\n'), env={})
    result = await execute_job(renamed, "sync", transports=transports)
    assert result.exit_code() == 0, result.text()
    assert result.counts()["updated"] == len(SPACE_TEXT)
    manifest = json.loads((dest / ".assetferry.json").read_text())["assets"]
    assert manifest["harbour.png"]["locales"] == {
        "de-DE": {"title": "Hafen", "alt_text": "Boote im Hafen"},
        "fr": {"title": "Port", "alt_text": "Bateaux au port"}}
