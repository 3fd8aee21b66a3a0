"""The web console in a real headless Chromium (Debian's, driven by Playwright): a query and its
rows, paging, an upload that shows the new dataset, and a login when auth is on. The console
and its assets come from the edge alone: a request to any other host fails the test."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Iterator

import playwright.sync_api as playwright
import pytest

from lakehouse.lake import Lake
from lakehouse.users import UserStore
from tests.test_http import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator["playwright.Browser"]:
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: "playwright.Browser") -> Iterator["playwright.Page"]:
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "about:")) else outside.append(r.url))
    yield page
    context.close()
    assert outside == [], f"the console fetched from elsewhere: {outside}"


def run_sql(page: "playwright.Page", sql: str) -> None:
    page.fill("#sql", sql)
    page.click("#run")


def upload(page: "playwright.Page", path: Path, name: str) -> None:
    page.set_input_files("#upload-file", str(path))
    page.fill("#upload-name", name)
    page.click("#upload")


def test_query_page_and_upload(lake: Lake, page: "playwright.Page", tmp_path: Path) -> None:
    csv = tmp_path / "cities.csv"
    csv.write_text("id,city,pop\n" + "".join(f"{i},city{i},{i * 1000}\n" for i in range(120)))
    with serving(lake) as running:
        page.goto(running.url + "/")
        assert page.inner_text("h1") == "lakehouse"
        upload(page, csv, "cities")
        page.wait_for_selector("#upload-result:has-text('120 rows into cities')")
        page.wait_for_selector(".dataset[data-name='cities']")
        assert "120 rows" in page.inner_text(".dataset[data-name='cities'] summary")
        run_sql(page, "SELECT id, city, pop FROM cities ORDER BY id")
        page.wait_for_selector("#result-table tbody tr")
        assert page.inner_text("#row-count") == "rows 1–50 of more"
        first = page.locator("#result-table tbody tr").first.locator("td").all_inner_texts()
        assert first == ["0", "city0", "0"]
        page.click("#next")
        page.wait_for_selector("#row-count:has-text('rows 51–100')")
        assert page.locator("#result-table tbody tr").first.locator("td").all_inner_texts() == ["50", "city50", "50000"]
        run_sql(page, "SELECT * FROM nowhere")
        page.wait_for_selector("#results .error")
        assert "nowhere" in page.inner_text("#results .error")


def test_openapi_pages_load_offline(lake: Lake, page: "playwright.Page") -> None:
    with serving(lake) as running:
        page.goto(running.url + "/schema/swagger")
        page.wait_for_selector("[data-path=\"/v1/ingest\"]")
        assert page.locator(".opblock").count() > 5


@pytest.fixture
def secured(lake: Lake, tmp_path: Path) -> Lake:
    secrets = tmp_path / "secrets.toml"
    UserStore(str(secrets)).add("wes", "writer", "wes-writer-pass", ())
    lake.config = dataclasses.replace(lake.config, auth=dataclasses.replace(lake.config.auth, enabled=True), secrets=dataclasses.replace(lake.config.secrets, path=str(secrets)))
    lake.auth.config = lake.config.auth
    lake.auth.users = UserStore(str(secrets))
    return lake


def test_with_auth_on_nothing_works_before_logging_in(secured: Lake, page: "playwright.Page", tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    with serving(secured) as running:
        page.goto(running.url + "/")
        assert page.is_visible("#login") and not page.is_visible("#sql") and not page.is_visible("#upload-form")
        assert page.request.post(running.url + "/console/sql", form={"sql": "SELECT 1"}).status == 401
        assert page.request.post(running.url + "/v1/ingest?name=x", multipart={"file": {"name": "x.csv", "mimeType": "text/csv", "buffer": b"a\n1\n"}}).status == 401
        page.fill("input[name=user]", "wes")
        page.fill("input[name=password]", "wrong")
        page.click("#login button")
        page.wait_for_selector("#login .error")
        page.fill("input[name=user]", "wes")
        page.fill("input[name=password]", "wes-writer-pass")
        page.click("#login button")
        page.wait_for_selector("#sql")
        assert "wes" in page.inner_text("header")
        upload(page, csv, "x")
        page.wait_for_selector("#upload-result:has-text('1 rows into x')")
        run_sql(page, "SELECT a FROM x")
        page.wait_for_selector("#result-table tbody tr")
        assert page.locator("#result-table tbody td").all_inner_texts() == ["1"]
        page.click("header button")
        page.wait_for_selector("#login")
        assert page.request.post(running.url + "/console/sql", form={"sql": "SELECT 1"}).status == 401
