"""The page at ``/`` in a real browser: Debian's chromium driven by Playwright, offline.

Needs ``/usr/bin/chromium`` (CI installs it with ``.ci/install-browser``; Playwright's own
browser download is never used) and the ``playwright`` package (the ``test`` extra).
Every request to a host other than 127.0.0.1 is aborted and recorded, so the test also
proves that the page needs nothing from the network. Screenshots go to
``artifacts/screenshots/`` (a CI artifact).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from genrekit.tagging.names import NameMap
from browser import SCREENSHOTS, needs_chromium
from servers import Server

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def server(default_bundle, tmp_path_factory):
    srv = Server(default_bundle, tmp_path_factory.mktemp("web-page-tmp"))
    yield f"http://127.0.0.1:{srv.port}"
    srv.stop()


# The page's Content-Security-Policy forbids eval, so page.wait_for_function is always
# given a function ("() => ..."), which Playwright runs without eval.


class Watch:
    """Console errors, page errors and blocked (non-loopback) requests of one browser context."""

    def __init__(self, context, page):
        self.blocked: list[str] = []
        self.errors: list[str] = []
        context.route("**/*", self._route)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _route(self, route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


def _shot(page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def _medley(shared_data: Path, folder: Path) -> Path:
    import numpy as np
    import soundfile as sf

    parts = [sf.read(shared_data / "gtzan" / "genres" / g / f"{g}.00001.wav", dtype="float32")[0]
             for g in ("jazz", "metal", "classical", "hiphop")]
    path = folder / "medley.wav"
    sf.write(path, np.concatenate(parts), 22050, subtype="PCM_16")
    return path


def test_upload_a_song_offline(browser, server, shared_data, tmp_path):
    clip = shared_data / "gtzan" / "genres" / "jazz" / "jazz.00000.wav"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(context, page)
    # Listening from the start: a chooser opened on keydown can beat expect_file_chooser's set-up.
    choosers = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    page.goto(server + "/")
    page.wait_for_function("() => document.getElementById('model-name').textContent.startsWith('Model:')")

    # Keyboard: the first Tab reaches the file input, its focus shows on the drop zone,
    # and Enter opens the file chooser; the song is chosen that way.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "file"
    assert page.evaluate("getComputedStyle(document.getElementById('drop')).outlineStyle") == "solid"
    assert page.evaluate("document.querySelector('label[for=file]').id") == "drop"
    page.keyboard.press("Enter")
    for _ in range(100):
        if choosers:
            break
        page.wait_for_timeout(50)
    assert choosers, "Enter on the focused file input opened no file chooser"
    choosers[0].set_files(str(clip))

    page.wait_for_selector("#bars li", timeout=90_000)
    values = page.eval_on_selector_all("#bars .bar-value", "els => els.map(e => e.textContent)")
    assert len(values) == 10 and all(v.endswith("%") for v in values)
    assert abs(sum(float(v[:-1]) for v in values) - 100) < 1.0
    shown = [float(v[:-1]) for v in values]
    assert shown == sorted(shown, reverse=True)
    top = page.eval_on_selector("#bars li", "e => e.dataset.label")
    assert page.text_content("#top-label") == NameMap.default().display(top)  # "Hip-Hop", not "hiphop"
    assert page.text_content("#bars li .bar-name") == NameMap.default().display(top)
    assert "Done" in page.text_content("#status")

    page.wait_for_function("() => { const i = document.getElementById('spec-img');"
                           " return i.complete && i.naturalWidth > 0; }", timeout=30_000)
    assert "Mel-spectrogram of jazz.00000.wav" in page.get_attribute("#spec-img", "alt")
    assert page.eval_on_selector_all("#spec-y span", "e => e.length") >= 4
    assert page.eval_on_selector_all("#spec-x span", "e => e.length") >= 3
    assert page.eval_on_selector_all("#timeline svg rect.seg", "e => e.length") >= 1
    assert page.eval_on_selector_all("#legend li", "e => e.length") == 10
    assert page.get_attribute("#timeline svg", "aria-label").startswith("Genre probabilities along the song")

    # A two-minute medley of four genres (made from shared clips, in a temp folder): the
    # timeline gets one stacked column per window, which is what the screenshot shows.
    page.set_input_files("#file", str(_medley(shared_data, tmp_path)))
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Done: medley.wav')",
                           timeout=90_000)
    assert page.eval_on_selector_all("#timeline svg g.window", "e => e.length") >= 4
    page.wait_for_function("() => { const i = document.getElementById('spec-img');"
                           " return i.complete && i.naturalWidth > 0 && i.src.includes('/api/spectrogram/'); }")
    _shot(page, "web-page-desktop.png")

    # A phone-sized window: no horizontal scrolling.
    page.set_viewport_size({"width": 375, "height": 700})
    page.wait_for_timeout(400)  # the charts redraw after a resize
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page is {overflow} px wider than a 375-px window"
    _shot(page, "web-page-phone.png")

    assert watch.blocked == [], f"the page tried to reach other hosts: {watch.blocked}"
    assert watch.errors == [], f"console errors: {watch.errors}"
    context.close()


def test_error_message(browser, server, tmp_path):
    bad = tmp_path / "not-a-song.mp3"
    bad.write_text("this is text, not audio\n" * 20)
    context = browser.new_context(viewport={"width": 800, "height": 700})
    page = context.new_page()
    watch = Watch(context, page)
    page.goto(server + "/")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    text = page.text_content("#error-text")
    assert "not-a-song.mp3" in text and "not an audio file" in text
    assert page.get_attribute("#error", "role") == "alert"
    assert page.is_hidden("#results")
    _shot(page, "web-page-error.png", full_page=False)
    assert watch.blocked == []
    # Chromium logs the 422 itself as a failed resource load; nothing else may appear.
    assert [e for e in watch.errors if "status of 422" not in e] == []
    context.close()


def test_the_header_names_the_model_in_words(browser, server):
    """Issue 29 item 7: "Model: gtzan-musicnn — MSD-musicnn tags + logistic regression/SVM vote, GTZAN's ten
    genres", not the card's recipe; the genres listed by their display names."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(context, page)
    page.goto(server + "/")
    page.wait_for_function("() => document.getElementById('model-name').textContent.startsWith('Model:')")
    header = page.text_content("#model-name")
    assert header == "Model: gtzan-musicnn \u2014 MSD-musicnn tags + logistic regression/SVM vote, GTZAN's ten genres"
    about = page.text_content("#about-list")
    assert "Hip-Hop" in about and "hiphop" not in about
    assert watch.errors == [] and watch.blocked == []
    context.close()
