"""The operators' page itself: every label in French and English, the page rendered in each
language with the right `lang`, every key the page and its script use defined, and text colours
that keep WCAG AA contrast on the page's backgrounds."""

from __future__ import annotations

import html
import re

import pytest

from operators_view.i18n import EN, FR, LANGUAGES, STRINGS, negotiate
from operators_view.page import STATIC_DIR, load_template, render_page
from schemas.families import FAMILIES
from schemas.territory import Sector
from streams.validation.stage import OVERFLOW, UNKNOWN, UNREGISTERED

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def test_every_key_exists_in_french_and_english() -> None:
    assert set(FR) == set(EN), {"only in fr": set(FR) - set(EN), "only in en": set(EN) - set(FR)}
    assert all(text.strip() for table in STRINGS.values() for text in table.values())


def test_both_languages_fill_in_the_same_values() -> None:
    for key in EN:
        assert set(PLACEHOLDER.findall(EN[key])) == set(PLACEHOLDER.findall(FR[key])), key


def test_every_key_the_page_and_its_script_use_is_defined() -> None:
    template = load_template()
    script = (STATIC_DIR / "view.js").read_text()
    used = set(re.findall(r'data-i18n="([a-z0-9_.]+)"', template))
    used |= set(re.findall(r"\{\{t:([a-z0-9_.]+)\}\}", template))
    used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', script))
    used |= set(re.findall(r'"((?:air|state|value|fig|conn)\.[a-z_]+)"', script))
    assert used, "no key found: the patterns no longer match the page"
    assert used <= set(EN), used - set(EN)


def test_every_category_the_data_can_hold_has_a_label() -> None:
    sectors = {s.value for s in Sector} | {"mobility", "ev_charging", "other"}
    modes = {"bike", "ebike", "bus", "sea_bus", "carsharing"}  # streams/indicators/enrichment.py
    for key in (
        [f"sector.{s}" for s in sectors]
        + [f"mode.{m}" for m in modes]
        + [f"family.{name}" for name in FAMILIES]
    ):
        assert key in EN, key
    for role in ("worker", "sink"):
        assert f"role.{role}" in EN
    for source in ("influxdb", "worker", "kafka", "dead_letters"):
        assert f"source.{source}" in EN
    for bucket in (UNREGISTERED, UNKNOWN, OVERFLOW):  # the counters' keys that name no producer
        assert f"producer.{bucket}" in EN


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_page_renders_in_each_language(lang: str) -> None:
    page = render_page(load_template(), lang)
    assert f'<html lang="{lang}">' in page
    assert not re.search(r"\{\{(t:|pressed:|lang\}|strings\})", page)
    assert f"<title>{html.escape(STRINGS[lang]['page.title'])}</title>" in page
    assert f'data-lang="{lang}" lang="{lang}" aria-pressed="true"' in page
    # No asset from elsewhere: the page works with no internet.
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_an_unknown_key_in_the_template_is_an_error() -> None:
    with pytest.raises(KeyError, match=r"no\.such\.key"):
        render_page("<p>{{t:no.such.key}}</p>", "en")


def test_the_string_tables_cannot_close_their_script_block() -> None:
    page = render_page("<script>{{strings}}</script>", "fr")
    assert page.count("</script>") == 1


@pytest.mark.parametrize(
    ("requested", "accept", "expected"),
    [
        ("en", "fr-FR", "en"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "de-DE,fr;q=0.5", "fr"),
        ("xx", None, "fr"),
    ],
)
def test_language_negotiation(requested: str | None, accept: str | None, expected: str) -> None:
    assert negotiate(requested, accept) == expected


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_keep_wcag_aa_contrast() -> None:
    css = (STATIC_DIR / "view.css").read_text()
    colours = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{6});", css))
    for text in ("fg", "muted", "accent", "good", "warn", "bad", "focus"):
        for background in ("bg", "panel"):
            ratio = contrast(colours[text], colours[background])
            assert ratio >= 4.5, f"--{text} on --{background}: {ratio:.2f}:1"
    assert contrast("#05201c", colours["accent"]) >= 4.5  # the pressed language button
