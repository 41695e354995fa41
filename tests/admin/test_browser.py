"""The project admin in a real browser: headless Chromium against runserver.

Debian's `chromium` and `chromium-driver` packages provide the browser and its
driver; without them the test is skipped, saying what to install.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections

from indexing.models import IndexJob
from registry.models import Project
from registry.services import project_delete

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1280,1400",
]
PROJECT_NAME = "browser-demo"
MODULE = textwrap.dedent('''
    def parse_header_line(line):
        """Split an HTTP header line into a lower-case name and its value."""
        name, _, value = line.partition(":")
        return name.strip().lower(), value.strip()
    ''')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_server_url(transactional_db, tmp_path) -> Iterator[str]:
    """Run `manage.py runserver` on the test registry; yield its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "REGISTRY_DATABASE_NAME": connections["default"].settings_dict["NAME"],
        "DEBUG": "1",
    }
    # Jobs started from the page run in threads of the server, not on a broker.
    env.pop("CELERY_BROKER_URL", None)
    log_path = tmp_path / "runserver.log"
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "runserver",
        f"127.0.0.1:{port}",
        "--noreload",
    ]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/admin/login/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"runserver did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def browser(tmp_path):
    """Start headless Chromium through chromium-driver; quit it afterwards."""
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed "
            "(apt-get install -y chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    # Both paths given, so Selenium Manager never looks for (or downloads) one.
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    service = webdriver.ChromeService(
        executable_path=driver, log_output=str(tmp_path / "chromedriver.log")
    )
    session = webdriver.Chrome(options=options, service=service)
    try:
        yield session
    finally:
        session.quit()


@pytest.fixture
def browser_project_cleanup(transactional_db) -> Iterator[None]:
    """Drop the project the browser creates, with its database."""
    yield
    project = Project.objects.using("default").filter(name=PROJECT_NAME).first()
    if project is not None:
        project_delete(project=project)


def test_an_admin_creates_indexes_and_searches_a_project(
    browser_project_cleanup, live_server_url, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    repo = tmp_path / "repo"
    (repo / "http").mkdir(parents=True)
    (repo / "http" / "headers.py").write_text(MODULE)
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    wait = WebDriverWait(browser, 30)

    browser.get(f"{live_server_url}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys("admin")
    browser.find_element(By.ID, "id_password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(shown.title_contains("Site administration"))

    browser.get(f"{live_server_url}/admin/registry/project/add/")
    browser.find_element(By.ID, "id_name").send_keys(PROJECT_NAME)
    browser.find_element(By.NAME, "_continue").click()
    wait.until(shown.presence_of_element_located((By.ID, "project-index")))
    project = Project.objects.using("default").get(name=PROJECT_NAME)

    browser.find_element(By.ID, "id_repo_path").send_keys(str(repo))
    browser.find_element(By.CSS_SELECTOR, "#project-index input[type=submit]").click()
    wait.until(
        shown.text_to_be_present_in_element(
            (By.CSS_SELECTOR, ".messagelist"), "in the background"
        )
    )
    deadline = time.monotonic() + 60
    while (job := IndexJob.objects.using("default").get(project=project)).status in (
        IndexJob.Status.QUEUED,
        IndexJob.Status.RUNNING,
    ):
        assert time.monotonic() < deadline, f"job stuck at {job.phase}"
        time.sleep(0.1)
    assert job.status == IndexJob.Status.COMPLETED, job.error

    browser.refresh()
    assert browser.find_element(By.ID, "count-files").text == "1"
    assert "completed" in browser.find_element(By.ID, "project-jobs").text
    browser.save_screenshot(str(tmp_path / "project-page.png"))
    browser.find_element(By.ID, "id_q").send_keys(
        "split an http header into name and value"
    )
    browser.find_element(By.CSS_SELECTOR, "#project-search input[type=submit]").click()
    results = wait.until(shown.presence_of_element_located((By.ID, "search-results")))
    first = results.find_element(By.CLASS_NAME, "search-result")
    assert "http/headers.py:2-5" in first.text
    assert "parse_header_line" in first.text
    assert browser.title.startswith(f"Search {PROJECT_NAME}")

    screenshot = tmp_path / "project-search.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
