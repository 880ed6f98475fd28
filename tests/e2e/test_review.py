"""The review page in a real browser: copy the transcript, download it as text and as Markdown."""

from __future__ import annotations

import pytest

from improv.transcript_export import escape_markdown
from tests.e2e.conftest import TEXT_USER, open_page, start_active_scene

pytestmark = pytest.mark.e2e

LINES = ("Doctor, my shadow has started arriving before me.", "Then we must book it its own appointment.")


def play_and_review(page, base_url: str) -> None:
    start_active_scene(page, base_url)
    for line in LINES:
        page.fill("[data-say-form] textarea", line)
        page.locator("[data-say-form] button[type=submit]").click()
        page.wait_for_load_state()
    page.get_by_role("button", name="End scene and get coaching").click()
    page.wait_for_url("**/review/", timeout=30_000)


def transcript_on_page(page) -> list[tuple[str, str]]:
    """(speaker, words) of every line the review page shows."""
    rows = page.locator(".transcript li.line").all()
    # text_content: the words as written (inner_text would apply the CSS upper-casing of names).
    return [
        (row.locator(".who").text_content().split()[0], row.locator(".said").text_content().strip())
        for row in rows
    ]


def test_the_review_copies_and_downloads_the_whole_transcript(text_stack, browser, shot, tmp_path):
    context, page = open_page(browser, text_stack.url, TEXT_USER)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=text_stack.url)
    try:
        play_and_review(page, text_stack.url)
        assert page.get_by_role("heading", name="Coaching review").is_visible()
        shown = transcript_on_page(page)
        assert len(shown) >= 2 * len(LINES)  # the MC, the audience, our lines and the partner's
        assert [words for who, words in shown if who == "You"] == list(LINES)
        assert any(who == "Puck" for who, _ in shown)

        downloads = {}
        for name, ext in (("Download as text", "txt"), ("Download as Markdown", "md")):
            with page.expect_download() as info:
                page.get_by_role("link", name=name).click()
            download = info.value
            assert download.suggested_filename.endswith(f".{ext}")
            path = tmp_path / download.suggested_filename
            download.save_as(path)
            downloads[ext] = path.read_text()
        for who, words in shown:  # every line, with its speaker, in both files
            assert f"{who}: {words}" in downloads["txt"], (who, words)
            assert f"**{who}:** {escape_markdown(words)}" in downloads["md"], (who, words)
        for line in LINES:
            assert f"**You:** {line}" in downloads["md"]

        copy = page.get_by_role("button", name="Copy transcript")
        copy.focus()
        page.keyboard.press("Enter")
        status = page.locator("[data-copy-status]")
        page.wait_for_function("document.querySelector('[data-copy-status]').textContent.length > 0")
        assert status.inner_text() == "Transcript copied to the clipboard."
        assert page.evaluate("navigator.clipboard.readText()") == downloads["txt"]
        shot(page, "review-transcript-copied")
    finally:
        context.close()
