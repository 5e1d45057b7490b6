"""The job file's field templates: a tiny evaluator, no ``eval`` and no ``str.format``.

A template is text with placeholders in braces::

    title = "{title or filename_stem}"
    description = "{description}\\n\\n© {copyright}"
    alt_text = "{alt_text or 'Photo'}"

A placeholder is one or more alternatives joined by ``or``; the first that is not empty wins.
An alternative is a field name (:data:`PLACEHOLDERS`, or ``extra.KEY`` for a source
connector's own field) or a quoted text (``'...'`` or ``"..."``), which is the default.
``{{`` and ``}}`` stand for literal braces.

Empty values collapse cleanly: a line whose placeholders are all empty is left out whole (so
``© {copyright}`` leaves no stray ``©``), runs of blank lines become one, and blank lines at
either end go. A template that renders to nothing gives ``None`` (the field stays empty).

Errors (:class:`TemplateError`, a ``ValueError``) say what is wrong and which placeholders
exist; the job file loader turns them into exit 2 naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PLACEHOLDERS: Mapping[str, str] = {
    "title": "the asset's title",
    "description": "the asset's description",
    "alt_text": "the asset's alt text",
    "copyright": "the asset's copyright line",
    "source": "where the asset comes from (Storyblok's source field)",
    "focus": "the focus point as x,y fractions",
    "tags": "the asset's tags (after [mapping.tags]) joined by ', '",
    "filename": "the file name, e.g. photo.jpg",
    "filename_stem": "the file name without its extension, e.g. photo",
    "extension": "the extension without its dot, e.g. jpg",
    "folder": "the source folder path, e.g. marketing/2024",
    "content_type": "the content type, e.g. image/jpeg",
}
"""Every placeholder name a template may use, with what it holds (``extra.KEY`` aside)."""

EXTRA_PREFIX = "extra."

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?")
_BLANKS = re.compile(r"\n{3,}")


class TemplateError(ValueError):
    """A template that cannot be read; the message says what to write instead."""


@dataclass(frozen=True, slots=True)
class Field:
    """A placeholder alternative naming a field (``title``, ``extra.display_name``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Text:
    """A placeholder alternative that is quoted text (a default)."""

    value: str


@dataclass(frozen=True, slots=True)
class Placeholder:
    alternatives: tuple[Field | Text, ...]


Part = str | Placeholder


@dataclass(frozen=True, slots=True)
class Rendered:
    """A template's value (``None`` when empty) and the fields whose text it holds."""

    value: str | None
    used: frozenset[str]


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template (:func:`parse_template`); ``text`` is what the job file says."""

    text: str
    lines: tuple[tuple[Part, ...], ...]

    @property
    def fields(self) -> frozenset[str]:
        """Names of every field the template refers to."""
        return frozenset(
            alt.name
            for line in self.lines
            for part in line
            if isinstance(part, Placeholder)
            for alt in part.alternatives
            if isinstance(alt, Field)
        )

    def render(self, values: Mapping[str, str | None]) -> Rendered:
        """The value for one asset; ``values`` maps field names to their text (a missing
        or empty one is empty)."""
        used: set[str] = set()
        out: list[str] = []
        for line in self.lines:
            pieces: list[str] = []
            holes = filled = 0
            for part in line:
                if isinstance(part, str):
                    pieces.append(part)
                    continue
                holes += 1
                for alt in part.alternatives:
                    value = alt.value if isinstance(alt, Text) else values.get(alt.name)
                    if value:
                        pieces.append(value)
                        filled += 1
                        if isinstance(alt, Field):
                            used.add(alt.name)
                        break
            if holes and not filled:
                continue  # only empty placeholders: the whole line goes
            out.append("".join(pieces))
        text = _BLANKS.sub("\n\n", "\n".join(out)).strip()
        return Rendered(text or None, frozenset(used))


def known_placeholders() -> str:
    """The placeholder names for an error message: ``title, description, ..., extra.KEY``."""
    return ", ".join((*PLACEHOLDERS, "extra.KEY"))


def parse_template(text: str) -> Template:
    """Read a template. Raises :class:`TemplateError` on an unknown placeholder, an empty or
    unclosed brace, a stray ``}``, or an alternative that is neither a name nor quoted text.
    """
    return Template(text, tuple(_parse_line(raw) for raw in text.split("\n")))


def _parse_line(line: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(line):
        char = line[i]
        if line.startswith("{{", i) or line.startswith("}}", i):
            literal.append(char)
            i += 2
            continue
        if char == "}":
            raise TemplateError("a '}' without its '{' (write '}}' for a literal brace)")
        if char != "{":
            literal.append(char)
            i += 1
            continue
        end = _closing(line, i + 1)
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_placeholder(line[i + 1 : end]))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _closing(line: str, start: int) -> int:
    """Index of the ``}`` closing a placeholder opened before ``start`` (quotes skipped)."""
    quote: str | None = None
    for j in range(start, len(line)):
        char = line[j]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "}":
            return j
        elif char == "{":
            break
    raise TemplateError(
        f"placeholder {line[start - 1:][:30]!r} is not closed (write '{{{{' for a literal "
        "brace)")


_TOKEN = re.compile(r"\s*(?:'([^']*)'|\"([^\"]*)\"|([^\s'\"]+))\s*")


def _placeholder(body: str) -> Placeholder:
    if not body.strip():
        raise TemplateError(
            f"an empty placeholder {{}}; use one of: {known_placeholders()}")
    alternatives: list[Field | Text] = []
    tokens: list[tuple[str, bool]] = []  # (text, quoted)
    pos = 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if match is None or match.end() == pos:
            raise TemplateError(f"cannot read placeholder {{{body}}}")
        single, double, bare = match.groups()
        if bare is None:
            tokens.append((single if single is not None else double or "", True))
        else:
            tokens.append((bare, False))
        pos = match.end()
    for index, (token, quoted) in enumerate(tokens):
        if index % 2 == 1:
            if quoted or token != "or":
                raise TemplateError(
                    f"placeholder {{{body}}}: alternatives are joined by 'or', "
                    f"e.g. {{title or filename_stem}}")
            continue
        if quoted:
            alternatives.append(Text(token))
        elif _NAME.fullmatch(token) and (
            token in PLACEHOLDERS or (token.startswith(EXTRA_PREFIX) and len(token) > 6)
        ):
            alternatives.append(Field(token))
        else:
            raise TemplateError(
                f"unknown placeholder {{{token}}}; placeholders: {known_placeholders()}")
    if len(tokens) % 2 == 0:
        raise TemplateError(f"placeholder {{{body}}} ends with 'or'")
    return Placeholder(tuple(alternatives))
