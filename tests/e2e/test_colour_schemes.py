"""Both colour schemes in a real browser: the page follows the system's light or dark setting, and
the review's text and chart stay readable (WCAG contrast measured on the rendered colours)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import TEXT_USER, sign_in
from tests.e2e.test_review import play_and_review

pytestmark = pytest.mark.e2e

# Contrast of each element's colour (or SVG fill) against the first opaque background behind it.
CONTRAST = """(selectors) => {
  const parse = (value) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(value || '');
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const behind = (node) => {
    for (let n = node.parentElement; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0.9) return c;
    }
    return parse(getComputedStyle(document.documentElement).backgroundColor) || { r: 255, g: 255, b: 255 };
  };
  const out = {};
  for (const [name, selector, property] of selectors) {
    const node = document.querySelector(selector);
    if (!node) { out[name] = null; continue; }
    const fg = parse(getComputedStyle(node)[property]);
    const own = parse(getComputedStyle(node).backgroundColor);
    const bg = property === 'color' && own && own.a > 0.9 ? own : behind(node);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    out[name] = Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100;
  }
  out.bodyLuminance = Math.round(lum(parse(getComputedStyle(document.body).backgroundColor)) * 100) / 100;
  return out;
}"""

TEXT = [  # name, selector, property: text needs 4.5:1
    ("heading", "h1", "color"),
    ("eyebrow", ".eyebrow", "color"),
    ("muted", "main .muted", "color"),
    ("your name", ".transcript .line-user .who", "color"),
    ("partner's name", ".transcript .line-partner .who", "color"),
    ("audience", ".transcript .line-audience .said", "color"),
    ("your line", ".transcript .line-user .said", "color"),
    ("fact", "[data-fact=user_share]", "color"),
    ("fact label", ".shape-facts dt", "color"),
    ("chart label", "svg.timeline .tl-label", "fill"),
    ("nav link", ".nav a", "color"),
    ("secondary button", ".transcript-actions .button.secondary", "color"),
    ("primary button", ".actions .button:not(.secondary)", "color"),
]
GRAPHICS = [  # bars need 3:1 against the card
    ("your bar", "svg.timeline .tl-user", "fill"),
    ("partner's bar", "svg.timeline .tl-partner", "fill"),
]


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_review_is_readable_in_both_colour_schemes(text_stack, browser, shot, scheme):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=text_stack.url, color_scheme=scheme
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        sign_in(page, text_stack.url, TEXT_USER)
        play_and_review(page, text_stack.url)
        assert page.get_by_role("heading", name="The shape of your scene").is_visible()
        ratios = page.evaluate(CONTRAST, [list(item) for item in TEXT + GRAPHICS])
        # The page follows the system: dark by night, light by day.
        if scheme == "light":
            assert ratios["bodyLuminance"] > 0.8, ratios
        else:
            assert ratios["bodyLuminance"] < 0.05, ratios
        low_text = {name: ratios[name] for name, _, _ in TEXT if ratios[name] is None or ratios[name] < 4.5}
        low_graphics = {
            name: ratios[name] for name, _, _ in GRAPHICS if ratios[name] is None or ratios[name] < 3
        }
        assert low_text == {} and low_graphics == {}, ratios
        shot(page, f"review-{scheme}-scheme")
    finally:
        context.close()
