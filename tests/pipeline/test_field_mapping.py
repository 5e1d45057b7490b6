"""[mapping.fields] / [mapping.tags] through the job file, the plan, the CLI and a migrate."""

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
from pipeline.report import plan_json
from pipeline.run import execute_job, plan_job
from pipeline.samples import SampleFile, write_local_library
from tests.pipeline.helpers import CS_KEY, CS_TOKEN

BASE = "http://cs.emulator"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

FILES = [
    SampleFile(("Photos",), "sunset.png", PNG, "image/png", title="Sunset",
               alt="A red sky over the sea", tags=("sea", "sky")),
    SampleFile((), "logo.png", PNG + b"x", "image/png", title="Logo", tags=("brand",)),
]


def write_job(tmp_path: Path, mapping: str, *, target: str = "contentstack") -> Path:
    root = tmp_path / "library"
    if not root.exists():
        write_local_library(root, FILES)
    targets = {
        "contentstack": (f'connector = "contentstack"\napi_key = "{CS_KEY}"\n'
                         f'management_token = "${{CS_TOKEN}}"\nbase_url = "{BASE}"\n'
                         "requests_per_second = 1000\n"),
        "webflow": ('connector = "webflow"\nsite_id = "65427cf400e02b306eaa04a0"\n'
                    'token = "${WF_TOKEN}"\n'),
        "storyblok": ('connector = "storyblok"\nspace_id = 1\ntoken = "${SB_TOKEN}"\n'),
        "local": f'connector = "local"\npath = "{tmp_path / "out"}"\n',
    }
    path = tmp_path / "job.toml"
    path.write_text(
        f'[source]\nconnector = "local"\npath = "{root}"\n\n[target]\n{targets[target]}\n'
        f"{mapping}\n[run]\nstate = \"{tmp_path / 'state.db'}\"\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ('[mapping.fields]\ntitle = "{title or filname_stem}"\n',
         "mapping.fields.title: unknown placeholder {filname_stem}; placeholders: title,"),
        ('[mapping.fields]\ndescription = "{description"\n',
         "mapping.fields.description: placeholder '{description' is not closed"),
        ('[mapping.fields]\ntags = "{title}"\n', "mapping.fields.tags: tags are a list"),
        ("[mapping.fields]\ntitle = 3\n", "mapping.fields.title"),
        ('[mapping.tags]\nadd = "migrated"\n', "mapping.tags.add"),
        ('[mapping.tags]\nrenames = {a = "b"}\n', "mapping.tags.renames: unknown key"),
    ],
)
def test_a_bad_rule_is_a_config_error_naming_the_key(tmp_path: Path, mapping: str,
                                                     message: str) -> None:
    path = write_job(tmp_path, mapping)
    with pytest.raises(ConfigError) as info:
        load_job(path, env={"CS_TOKEN": "t"})
    assert message in str(info.value)


def test_cli_exit_2_for_a_field_the_target_lacks(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write_job(tmp_path, '[mapping.fields]\ntitle = "{title}"\n', target="webflow")
    assert main(["mappings", "show", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mapping.fields.title: the target has no field 'title'; its fields: alt_text" in err
    assert "Traceback" not in err


def test_cli_exit_2_for_a_bad_template(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = write_job(tmp_path, '[mapping.fields]\ndescription = "{descripton}"\n')
    assert main(["mappings", "show", "-c", str(path)]) == 2
    assert "mapping.fields.description: unknown placeholder {descripton}" \
        in capsys.readouterr().err


def test_mappings_show_prints_defaults_and_job_rules(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write_job(tmp_path, '[mapping.fields]\ntitle = "{title or filename_stem}"\n'
                               'focus = false\n[mapping.tags]\nadd = ["migrated-2026"]\n')
    assert main(["mappings", "show", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert '* title        "{title or filename_stem}"' in out
    assert '  description  "{description or alt_text}\\n\\nCopyright: {copyright}' in out
    assert "* focus        false: dropped on purpose" in out
    assert "* add     migrated-2026" in out

    assert main(["mappings", "show", "-c", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["target"] == "contentstack"
    fields = {r["key"]: r for r in data["sections"][0]["rows"]}
    assert fields["title"] == {"key": "title", "rule": "{title or filename_stem}",
                               "origin": "job file", "template": True,
                               "note": fields["title"]["note"]}
    assert fields["description"]["origin"] == "default"
    assert fields["alt_text"]["rule"] == "-> description"
    assert [s["title"] for s in data["sections"]][:2] == ["Fields", "Tags"]


async def test_plan_json_shows_the_carried_and_dropped_fields(
        tmp_path: Path, emu: ContentstackEmulator) -> None:
    job = load_job(write_job(tmp_path, ""), env={"CS_TOKEN": CS_TOKEN})
    plan = await plan_job(job, transports={"target": in_process_transport(emu.app)})
    data = json.loads(plan_json(plan))
    sunset = next(a for a in data["items"] if a["path"] == "Photos/sunset.png")
    assert "alt_text carried into description: the target has no alt_text field" \
        in sunset["warnings"]
    assert not any("dropped" in w for w in sunset["warnings"])
    assert data["summary"]["dropped_fields"] == {}


async def test_migrate_into_contentstack_puts_alt_text_in_description_and_adds_a_tag(
        tmp_path: Path, emu: ContentstackEmulator) -> None:
    path = write_job(tmp_path, '[mapping.tags]\nadd = ["migrated-2026"]\n'
                               'rename = { sky = "heaven" }\n')
    job = load_job(path, env={"CS_TOKEN": CS_TOKEN})
    transports = {"target": in_process_transport(emu.app)}
    plan = await plan_job(job, transports=transports)
    assert {a.op for a in plan.assets} == {Op.CREATE}
    summary = await execute_job(job, "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    by_name = {rec["filename"]: rec for rec in emu.assets.values()}
    assert by_name["sunset.png"]["description"] == "A red sky over the sea"
    assert by_name["sunset.png"]["tags"] == ["sea", "heaven", "migrated-2026"]
    assert by_name["logo.png"]["description"] == ""
    assert by_name["logo.png"]["tags"] == ["brand", "migrated-2026"]
    # a second run finds nothing to do: the rules are part of what was planned
    again = await plan_job(job, transports=transports)
    assert {a.op for a in again.assets} == {Op.SKIP}


async def test_a_changed_rule_updates_the_migrated_assets_on_the_next_sync(
        tmp_path: Path, emu: ContentstackEmulator) -> None:
    transports = {"target": in_process_transport(emu.app)}
    job = load_job(write_job(tmp_path, ""), env={"CS_TOKEN": CS_TOKEN})
    assert (await execute_job(job, "migrate", transports=transports)).exit_code() == 0
    unchanged = await plan_job(job, transports=transports)
    assert {a.op for a in unchanged.assets} == {Op.SKIP}

    job = load_job(write_job(tmp_path, '[mapping.tags]\nadd = ["migrated-2026"]\n'),
                   env={"CS_TOKEN": CS_TOKEN})
    plan = await plan_job(job, transports=transports)
    assert {a.op for a in plan.assets} == {Op.UPDATE}
    summary = await execute_job(job, "sync", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert all("migrated-2026" in rec["tags"] for rec in emu.assets.values())
    again = await plan_job(job, transports=transports)
    assert {a.op for a in again.assets} == {Op.SKIP}


def test_mappings_show_has_a_folders_section_with_the_effective_rules(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_job(tmp_path, '[mapping]\nfolder_root = "migrated/2026"\ncollapsed_path = "tag"\n'
                               '[mapping.folder_rules]\n"Old/*" = "Archive/{name}"\n'
                               '"Logos" = "Brand/Logos"\n')
    assert main(["mappings", "show", "-c", str(path), "--format", "json"]) == 0
    sections = {s["title"]: s for s in json.loads(capsys.readouterr().out)["sections"]}
    rows = {r["key"]: r for r in sections["Folders"]["rows"]}
    assert rows["folder_root"]["rule"] == "migrated/2026"
    assert rows["folder_root"]["origin"] == "job file"
    assert rows["folder_overflow"]["origin"] == "default"
    assert rows["folder_rules 'Logos'"]["rule"] == "Brand/Logos"
    assert "merged on purpose" in rows["folder_rules 'Logos'"]["note"]
    assert "merged on purpose" not in rows["folder_rules 'Old/*'"]["note"]
    assert rows["collapsed_path"]["rule"] == "tag"
    assert rows["target depth"]["rule"] == "5 levels"
    assert rows["target folders"]["rule"].startswith("300")
    assert main(["mappings", "show", "-c", str(path)]) == 0
    assert "Folders" in capsys.readouterr().out


def test_mappings_show_has_filters_and_publishing_sections(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_job(tmp_path, '[mapping.filters]\nexclude = ["drafts/**"]\nmax_size = "50MB"\n')
    text = path.read_text(encoding="utf-8").replace(
        "requests_per_second = 1000\n",
        'requests_per_second = 1000\npublish = {environments = ["production"], '
        'locales = ["en-us"]}\n')
    path.write_text(text, encoding="utf-8")
    assert main(["mappings", "show", "-c", str(path), "--format", "json"]) == 0
    sections = {s["title"]: s for s in json.loads(capsys.readouterr().out)["sections"]}
    filters = {r["key"]: r for r in sections["Filters"]["rows"]}
    assert filters["exclude"]["rule"] == "'drafts/**'"
    assert filters["exclude"]["origin"] == "job file"
    assert filters["max_size"]["rule"] == "50,000,000 bytes"
    assert filters["include"]["origin"] == "default"
    [publish] = sections["Publishing"]["rows"]
    assert publish["rule"] == "production (en-us)"
    assert publish["origin"] == "job file"


def test_mappings_show_has_no_publishing_section_for_a_target_that_does_not_publish(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_job(tmp_path, "", target="webflow")
    assert main(["mappings", "show", "-c", str(path), "--format", "json"]) == 0
    titles = [s["title"] for s in json.loads(capsys.readouterr().out)["sections"]]
    assert "Filters" in titles
    assert "Publishing" not in titles


@pytest.mark.parametrize(("target", "moved", "changed", "prune"), [
    ("contentstack", "moved to their new folder", "replaced in place",
     "deletes assets gone from the source (sync --prune)"),
    ("storyblok", "moved to their new folder", "replaced in place",
     "deletes assets gone from the source (sync --prune)"),
    ("local", "stay in their folder: the target cannot move assets", "replaced in place",
     "deletes assets gone from the source (sync --prune)"),
    ("webflow", "stay in their folder: the target cannot move assets",
     "not replaced: the target cannot replace a file (unsupported)",
     "deletes assets gone from the source (sync --prune)"),
])
def test_mappings_show_says_what_each_target_can_do_to_a_migrated_asset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, moved: str,
        changed: str, prune: str) -> None:
    """It said "create-only" for every target; what a target can do comes from the
    Protocols its connector implements."""
    assert main(["mappings", "show", "-c", str(write_job(tmp_path, "", target=target)),
                 "--format", "json"]) == 0
    sections = {s["title"]: s for s in json.loads(capsys.readouterr().out)["sections"]}
    rows = {r["key"]: r["rule"] for r in sections["Folders"]["rows"]}
    assert "create-only" not in rows
    assert rows["existing folders"].startswith("assetferry creates folders, never renames")
    assert (rows["moved assets"], rows["changed files"], rows["prune"]) == (moved, changed,
                                                                            prune)


@pytest.mark.parametrize("command", [["plan"], ["migrate"], ["mappings", "show"]])
def test_a_folder_root_deeper_than_the_target_allows_is_exit_2_naming_the_limit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It was one unsupported plan line per asset (300 levels into Contentstack's 5); now
    the job is refused before any request (the emulator's host does not even resolve)."""
    monkeypatch.setenv("CS_TOKEN", CS_TOKEN)
    root = "/".join(f"l{i}" for i in range(300))
    path = write_job(tmp_path, f'[mapping]\nfolder_root = "{root}"\n')
    assert main([*command, "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mapping.folder_root: 300 levels deep; the target allows at most 5 folder levels" \
        in err
    assert not (tmp_path / "state.db").exists()


def test_a_folder_root_longer_than_a_local_target_s_paths_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = "/".join(["x" * 200] * 30)  # 6,029 bytes: over Linux's PATH_MAX of 4,096
    path = write_job(tmp_path, f'[mapping]\nfolder_root = "{root}"\n', target="local")
    assert main(["plan", "-c", str(path)]) == 2
    assert "mapping.folder_root: 6,029 bytes long; the target allows paths of at most" \
        in capsys.readouterr().err


def test_a_folder_root_as_deep_as_the_limit_is_allowed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_job(tmp_path, '[mapping]\nfolder_root = "a/b/c/d/e"\n')
    assert main(["mappings", "show", "-c", str(path)]) == 0


@pytest.mark.parametrize("target", ["contentstack", "storyblok", "webflow", "local"])
def test_mappings_show_cites_vendor_docs_not_our_notes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str) -> None:
    """User text cites the vendor's documentation ("CMA Assets: Upload asset"), never our
    internal notes ("facts §1.5", which no user has)."""
    job = str(write_job(tmp_path, "", target=target))
    for fmt in ("table", "json"):
        assert main(["mappings", "show", "-c", job, "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert "facts" not in out
        assert "§" not in out
