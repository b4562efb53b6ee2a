"""`genesis docs`: the static HTML catalog, checked as text and in headless Chromium.

The browser test needs Debian's `chromium` (or Chrome: set GENESIS_CHROMIUM to its path)
and the `playwright` Python package; it never downloads a browser. It keeps a screenshot
of the catalog in test-artifacts/catalog.png.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.project.load import load_project
from genesis.review.catalog import build_docs, describe_cron, highlight_sql, prose
from tests.test_gitops import edit, write_project

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
XSS = "<script>alert('x')</script> & \"quotes\""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    project = write_project(tmp_path_factory.mktemp("docs") / "project")
    edit(project / "datasources/movie_talent.yaml", "description: Who plays", f"description: Who plays {XSS}")
    edit(project / "datasources/movie.yaml", "description: One row per title.",
         "description: One row per title, from `movie_cdc`.")
    out = project / "site"
    build_docs(load_project(project), out, generated_at=datetime(2025, 6, 11, tzinfo=UTC))
    return out


@pytest.fixture(scope="module")
def html(catalog) -> str:
    return (catalog / "index.html").read_text()


class Rows(HTMLParser):
    """id -> text of every element with an id (enough to read table rows and cards)."""

    def __init__(self):
        super().__init__()
        self.stack: list[str | None] = []
        self.text: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "col", "meta", "input", "kbd", "link"):
            return
        self.stack.append(dict(attrs).get("id"))

    def handle_endtag(self, tag):
        if self.stack and tag not in ("br", "col", "meta", "input", "kbd", "link"):
            self.stack.pop()

    def handle_data(self, data):
        for ident in self.stack:
            if ident:
                self.text[ident] = self.text.get(ident, "") + " " + data


def texts(html: str) -> dict[str, str]:
    parser = Rows()
    parser.feed(html)
    return {k: " ".join(v.split()) for k, v in parser.text.items()}


def test_one_self_contained_folder(catalog, html):
    assert sorted(p.name for p in catalog.iterdir()) == [".nojekyll", "index.html"]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched from a network
    assert "@import" not in html and "url(http" not in html
    assert "<style>" in html and "<script>" in html


def test_every_data_source_field_input_and_tracker_is_there(html):
    by_id = texts(html)
    for ds, fields in (("movie", ["movie_id", "title", "status", "budget", "total_budget"]),
                       ("production", ["country", "shoot_start"]), ("movie_talent", ["talent_name"])):
        assert f"ds-{ds}" in by_id
        for f in fields:
            assert f"field-{ds}-{f}" in by_id, (ds, f)
    for name in ("movie_list", "movie_cast", "schedule", "budgets"):
        assert f"input-{name}" in by_id
    for name in ("movies", "cast", "schedule", "budgets"):
        card = by_id[f"tracker-{name}"]
        assert "studio-ops" in card and f"out/{name}.csv" in card and "every hour" in card
        assert "SELECT" in card  # the compiled SQL
        assert f"Defined in trackers/{name}.yaml" in card  # relative to the project, wherever it runs


def test_fields_list_the_trackers_that_use_them(html):
    by_id = texts(html)
    assert by_id["field-movie-title"].endswith("cast movies")
    assert by_id["field-movie-budget"].endswith("budgets")  # through the measure total_budget
    assert by_id["field-movie-movie_count"].endswith("unused")
    assert "varchar" in by_id["field-movie-title"] and "The working title" in by_id["field-movie-title"]
    assert "DEV Development" in by_id["field-movie-status"]


def test_user_text_is_escaped(html):
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;quotes&#34;" in html
    assert "One row per title, from <code>movie_cdc</code>." in html
    assert str(prose("a `<b>` c")) == "a <code>&lt;b&gt;</code> c"


def test_sql_is_highlighted_and_escaped():
    out = str(highlight_sql("SELECT upper(a.\"x<y\"), 'it''s' FROM t WHERE n > 1", "trino"))
    assert out.startswith('<span class="k">SELECT</span> <span class="f">upper</span>(')
    assert '<span class="i">&#34;x&lt;y&#34;</span>' in out and '<span class="s">&#39;it&#39;&#39;s&#39;</span>' in out
    assert "n &gt; <span class=\"n\">1</span>" in out


def test_cron_in_words():
    assert describe_cron("*/15 * * * *") == "every 15 minutes"
    assert describe_cron("30 6 * * 1-5") == "weekdays at 06:30 UTC"
    assert describe_cron("0 3 * * *") == "daily at 03:00 UTC"
    assert describe_cron("0 8,14 * * 1-5") == "0 8,14 * * 1-5"


def test_cli_writes_the_catalog_and_rejects_an_invalid_project(tmp_path):
    project = write_project(tmp_path / "project")
    result = CliRunner().invoke(main, ["docs", "--out", str(tmp_path / "out"), "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "index.html").is_file()
    edit(project / "inputs/budgets.yaml", "movie.total_budget", "movie.total_budgt")
    result = CliRunner().invoke(main, ["docs", "--out", str(tmp_path / "bad"), "--project", str(project)])
    assert result.exit_code == 1 and "total_budgt" in result.output


# ---------------------------------------------------------------- in a browser


def chromium_path() -> str | None:
    candidates = [os.environ.get("GENESIS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                  shutil.which("chromium-browser"), shutil.which("google-chrome")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="module")
def page(catalog):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: apt-get install chromium (or set GENESIS_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--no-first-run", "--disable-extensions"])
        tab = browser.new_page(viewport={"width": 1440, "height": 900})
        tab.errors, tab.requests = [], []
        tab.on("pageerror", lambda error: tab.errors.append(str(error)))
        tab.on("console", lambda message: message.type == "error" and tab.errors.append(message.text))
        tab.on("request", lambda request: tab.requests.append(request.url))
        tab.goto((catalog / "index.html").as_uri())
        yield tab
        browser.close()


def visible(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.filter(e => e.offsetParent !== null).map(e => e.id)")


def type_search(page, text: str) -> None:
    page.fill("#search", "")
    page.type("#search", text)


def test_catalog_in_a_browser(page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "catalog.png"))
    assert page.title() == "lite · Genesis catalog"
    assert len(visible(page, "[data-card=tracker]")) == 4
    assert page.inner_text("#search-count") == "3 data sources · 12 fields · 4 inputs · 4 trackers"
    assert all(url.startswith("file://") for url in page.requests), page.requests
    assert page.errors == []


def test_search_filters_fields_and_trackers_as_you_type(page):
    type_search(page, "talent")
    assert visible(page, "tr[data-row=field]") == ["field-movie_talent-movie_id", "field-movie_talent-talent_name"]
    assert visible(page, "[data-card=tracker]") == ["tracker-cast"]
    assert page.inner_text("#search-count") == "2 fields · 2 data sources · 1 input · 1 tracker"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "catalog-search.png"))

    type_search(page, "movie working")  # every word must match: the field movie.title
    assert visible(page, "tr[data-row=field]") == ["field-movie-title"]
    assert set(visible(page, "[data-card=tracker]")) == set()

    type_search(page, "studio-ops")  # an owner: trackers match, data sources do not
    assert len(visible(page, "[data-card=tracker]")) == 4 and visible(page, "[data-card=datasource]") == []
    assert page.is_hidden("#datasources")

    type_search(page, "zzzz")
    assert page.is_visible("#no-results") and visible(page, "[data-card]") == []

    page.fill("#search", "")
    page.dispatch_event("#search", "input")
    assert len(visible(page, "[data-card]")) == 11 and page.is_hidden("#no-results")
    assert page.errors == []


def test_slash_focuses_search_and_sql_opens(page):
    page.click("h1.section-title")
    page.keyboard.press("/")
    page.keyboard.type("budget")
    assert page.input_value("#search") == "budget"
    assert "field-movie-budget" in visible(page, "tr[data-row=field]")
    page.keyboard.press("Escape")
    assert page.input_value("#search") == ""
    page.click("#tracker-budgets details.sql summary")
    assert "SUM(" in page.inner_text("#tracker-budgets pre").upper()


# --------------------------------------------------------------------------- on a phone


@pytest.fixture(scope="module")
def phone(page, tmp_path_factory):
    """The example project's catalog at a phone's width (390 x 844 CSS pixels), in a second
    tab of the browser the `page` fixture started (one Playwright per process)."""
    from genesis.project.load import load_project
    from genesis.review.catalog import build_docs

    index = build_docs(load_project(Path(__file__).resolve().parent.parent),
                       tmp_path_factory.mktemp("phone") / "site")
    context = page.context.browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                               has_touch=True)
    tab = context.new_page()
    tab.goto(Path(index).as_uri())
    yield tab
    context.close()


def test_catalog_on_a_phone(phone):
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "catalog-phone.png"))
    # nothing scrolls sideways
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    # the search box has a row of its own, wide enough to type in, with a font phones do not zoom
    box = phone.eval_on_selector("#search", "e => {const r = e.getBoundingClientRect();"
                                            " return {x: r.x, width: r.width, font: getComputedStyle(e).fontSize}}")
    assert box["width"] >= 300 and box["x"] >= 0 and box["font"] == "16px", box
    # names stay readable: no field or card name is broken letter by letter over several lines
    broken = phone.evaluate("""() => [...document.querySelectorAll('td.name code, .card-head h2')]
        .filter(e => e.offsetParent !== null)
        .filter(e => { const r = e.getBoundingClientRect();
                       const line = parseFloat(getComputedStyle(e).lineHeight) || 20;
                       return r.height > 1.6 * line && e.textContent.length < 30; })
        .map(e => e.textContent)""")
    assert broken == [], broken
    # the search still works there
    phone.fill("#search", "")
    phone.type("#search", "vendor")
    assert len(visible(phone, "[data-card=datasource]")) >= 1
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
