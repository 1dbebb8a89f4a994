"""Dark and light theme: Streamlit follows the browser's colour scheme; every page stays readable in both."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot

pytestmark = pytest.mark.e2e

PAGES = {"": "Overview", "sessions": "Sessions", "timeline": "Timeline", "costs": "Costs", "entities": "Entities"}


def luminance(css: str) -> float:
    """Relative luminance (WCAG) of an rgb()/rgba() colour."""
    r, g, b = (int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(("scheme", "paths"), [("dark", list(PAGES)), ("light", ["", "timeline"])])
def test_pages_are_readable_in_both_schemes(browser, demo_server, scheme, paths):
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, color_scheme=scheme)
    page = context.new_page()
    try:
        for path in paths:
            title = PAGES[path]
            page.goto(f"{demo_server.url}/{path}")
            heading = page.get_by_role("heading", name=title, level=1)
            expect(heading).to_be_visible(timeout=30_000)
            page.wait_for_timeout(500)
            background = page.locator('[data-testid="stApp"]').evaluate("e => getComputedStyle(e).backgroundColor")
            assert (luminance(background) < 0.1) == (scheme == "dark"), (path, background)
            for text in (heading, page.locator('[data-testid="stCaptionContainer"]').first):
                colour = text.evaluate("e => getComputedStyle(e).color")
                assert contrast(colour, background) >= 4.5, (path, scheme, colour, background)
            # chart labels (tick texts) in a colour readable on the page
            ticks = page.locator('[data-testid="stPlotlyChart"] .xtick text')
            if ticks.count():
                fill = ticks.first.evaluate("e => getComputedStyle(e).fill")
                assert contrast(fill, background) >= 3, (path, scheme, fill, background)
            shot(page, f"{scheme}-{path or 'overview'}")
    finally:
        context.close()
