"""The page itself: static/index.html rendered in one language, with both string tables inside.

The template marks text with ``{{t:key}}`` (the element also carries ``data-i18n="key"`` so
the script can switch language in place), the language with ``{{lang}}``, the switch's state
with ``{{pressed:fr}}``, and the string tables with ``{{strings}}``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from operators_view.i18n import LANGUAGES, STRINGS

STATIC_DIR = Path(__file__).parent / "static"
_PLACEHOLDER = re.compile(r"\{\{(t:[a-z0-9_.]+|pressed:[a-z]+|lang|strings)\}\}")


def render_page(template: str, lang: str) -> str:
    """The page in ``lang``; an unknown key in the template is an error, not a blank label."""
    strings = STRINGS[lang]
    # In a <script> block only "</" could end it early: escaped, the JSON stays the same data.
    tables = json.dumps(STRINGS, ensure_ascii=False).replace("</", "<\\/")

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "lang":
            return lang
        if name == "strings":
            return tables
        if name.startswith("pressed:"):
            return "true" if name.removeprefix("pressed:") == lang else "false"
        key = name.removeprefix("t:")
        if key not in strings:
            raise KeyError(f"static/index.html uses {key!r}, missing from operators_view/i18n.py ({lang})")
        return html.escape(strings[key])

    return _PLACEHOLDER.sub(fill, template)


def load_template() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def rendered_pages() -> dict[str, str]:
    """The page in every language, rendered once at start (it changes only with a release)."""
    template = load_template()
    return {lang: render_page(template, lang) for lang in LANGUAGES}
