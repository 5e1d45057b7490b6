"""The field template evaluator: syntax, alternatives, defaults, clean collapse of empties."""

from __future__ import annotations

import pytest

from mappings.templates import TemplateError, parse_template

VALUES = {"title": "Sunset", "description": "", "copyright": "Ann", "filename_stem": "img_01",
          "extra.display_name": "x_img"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{title}", "Sunset"),
        ("{description or title}", "Sunset"),
        ("{description or alt_text or filename_stem}", "img_01"),
        ("{description or 'no description'}", "no description"),
        ('{description or "none"}', "none"),
        ("{title} ({copyright})", "Sunset (Ann)"),
        ("{description}\n\n© {copyright}", "© Ann"),  # no blank lines left at the top
        ("{title}\n\n© {focus}", "Sunset"),  # no dangling ©
        ("{title}\n\n{description}\n\n\n{copyright}", "Sunset\n\nAnn"),
        ("{{literal}} {title}", "{literal} Sunset"),
        ("{extra.display_name}", "x_img"),
        ("{extra.missing}", None),
        ("{description}", None),
        ("plain text", "plain text"),
    ],
)
def test_render(template: str, expected: str | None) -> None:
    assert parse_template(template).render(VALUES).value == expected


def test_render_names_the_fields_whose_text_it_holds() -> None:
    rendered = parse_template("{description or title}\n\n© {copyright} {focus}").render(VALUES)
    assert rendered.used == frozenset({"title", "copyright"})
    assert parse_template("{description or 'x'}").render(VALUES).used == frozenset()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{titel}", "unknown placeholder {titel}; placeholders: title, description"),
        ("{title or desc}", "unknown placeholder {desc}"),
        ("{title", "is not closed"),
        ("title}", "a '}' without its '{'"),
        ("{}", "an empty placeholder"),
        ("{title description}", "alternatives are joined by 'or'"),
        ("{title or}", "ends with 'or'"),
        ("{extra.}", "unknown placeholder"),
        ("{__class__}", "unknown placeholder"),
        ("{title.__class__}", "unknown placeholder"),
    ],
)
def test_bad_templates_say_what_exists(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=None) as info:
        parse_template(template)
    assert message in str(info.value)


def test_the_error_lists_every_placeholder() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("{nope}")
    for name in ("alt_text", "copyright", "source", "filename_stem", "folder", "extra.KEY"):
        assert name in str(info.value)
