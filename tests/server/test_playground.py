"""The playground and /docs in a real headless Chromium (Debian's), against a real ``modelport serve``."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.loopback import ServeProcess, serve_process

KEY = "sk-playground-5"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="needs Debian's chromium and chromium-driver (make install)"
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    with serve_process("--api-key", KEY) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def by_id(driver: Any, testid: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def wait(driver: Any, condition: Any, timeout: float = 90) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))


def requested_urls(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def send(driver: Any, text: str) -> None:
    before = len(driver.find_elements("css selector", ".usage"))
    by_id(driver, "prompt").send_keys(text)
    by_id(driver, "send").click()
    wait(driver, lambda d: len(d.find_elements("css selector", ".usage")) > before)


def failures_499(server: ServeProcess) -> float:
    text = httpx.get(f"{server.base}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("modelport_request_failure_total") and 'status="499"' in line
    )


def test_the_playground_end_to_end(server: ServeProcess, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver = browser
    shots = iter(range(1, 100))

    def shot(name: str) -> None:
        driver.save_screenshot(str(tmp_path / f"{next(shots):02d}-{name}.png"))

    # 1. Load the page (from /, which sends there), give it the key, and the models come.
    driver.get(f"{server.base}/")
    assert driver.current_url.endswith("/playground")
    by_id(driver, "api-key").send_keys(KEY + Keys.TAB)
    wait(driver, lambda d: "smollm2-135m" in [o.text for o in Select(by_id(d, "model")).options])
    shot("loaded")
    # It opens on an instruction-tuned chat model; the base model is marked; embedders apart.
    models = Select(by_id(driver, "model"))
    assert models.first_selected_option.get_attribute("value") == "smollm2-135m"
    assert "gemma3-270m (base model)" in [o.text for o in models.options]
    assert "minilm-l6" not in [o.text for o in models.options]
    assert [o.get_attribute("value") for o in Select(by_id(driver, "embed-model")).options] == ["minilm-l6"]

    # 2. A streamed answer, with its usage line.
    Select(by_id(driver, "model")).select_by_visible_text("smollm2-135m")
    limit = driver.find_element("id", "max-tokens")
    limit.clear()
    limit.send_keys("40")
    send(driver, "Name the capital of France.")
    assert by_id(driver, "answer").text.strip()
    usage = by_id(driver, "usage").text
    assert "completion tokens" in usage and "tokens/s" in usage and "to first token" in usage
    shot("answer")

    # 3. Stop mid-answer: the server counts a request its client cancelled.
    cancelled = failures_499(server)
    limit.clear()
    limit.send_keys("1500")
    by_id(driver, "prompt").send_keys("Tell me a very long story about a dragon and a baker.")
    by_id(driver, "send").click()
    wait(driver, lambda d: len(by_id(d, "answer").text) > 20)
    by_id(driver, "stop").click()
    wait(driver, lambda d: "[stopped]" in by_id(d, "answer").text)
    deadline = time.monotonic() + 10
    while failures_499(server) <= cancelled:
        assert time.monotonic() < deadline, "the server did not see the cancel"
        time.sleep(0.1)
    shot("stopped")

    # 4. A forced tool call shows as a card with the name and JSON arguments.
    driver.find_element("id", "reset").click()
    driver.find_element("id", "example-tool").click()
    Select(by_id(driver, "tool-choice")).select_by_value("required")
    limit.clear()
    limit.send_keys("64")
    send(driver, "What is the weather in Paris?")
    card = by_id(driver, "tool-call")
    assert "get_weather" in card.text
    arguments = json.loads(card.find_element("css selector", ".arguments").text)
    assert isinstance(arguments.get("city"), str)
    shot("tool-call")

    # 5. The tool's result goes back; a final answer comes.
    Select(by_id(driver, "tool-choice")).select_by_value("none")
    by_id(driver, "tool-result").send_keys('{"temperature": 18, "sky": "sunny"}')
    before = len(driver.find_elements("css selector", ".usage"))
    by_id(driver, "send-tool-result").click()
    wait(driver, lambda d: len(d.find_elements("css selector", ".usage")) > before)
    assert by_id(driver, "answer").text.strip() and not by_id(driver, "error").text
    shot("tool-result")

    # 6. The same turn through /v1/responses: a forced call, its result back, an answer.
    Select(by_id(driver, "api")).select_by_value("responses")
    driver.find_element("id", "reset").click()
    Select(by_id(driver, "tool-choice")).select_by_value("required")
    send(driver, "What is the weather in Rome?")
    card = by_id(driver, "tool-call")
    assert "get_weather" in card.text
    assert isinstance(json.loads(card.find_element("css selector", ".arguments").text).get("city"), str)
    Select(by_id(driver, "tool-choice")).select_by_value("none")
    by_id(driver, "tool-result").send_keys('{"temperature": 22, "sky": "clear"}')
    before = len(driver.find_elements("css selector", ".usage"))
    by_id(driver, "send-tool-result").click()
    wait(driver, lambda d: len(d.find_elements("css selector", ".usage")) > before)
    assert by_id(driver, "answer").text.strip() and not by_id(driver, "error").text
    usage = by_id(driver, "usage").text
    assert "completion tokens" in usage and ("completed" in usage or "incomplete" in usage)
    urls = requested_urls(driver)  # the browser's log is read once: kept for the last check
    assert sum(u.endswith("/v1/responses") for u in urls) == 2
    shot("responses")

    # 7. Embeddings: a heat map of cosine similarities.
    by_id(driver, "tab-embeddings").click()
    Select(by_id(driver, "embed-model")).select_by_visible_text("minilm-l6")
    by_id(driver, "embed").click()
    wait(driver, lambda d: by_id(d, "heatmap").get_attribute("data-cells") == "16")
    shot("embeddings")

    # 7b. Rerank: the same texts against a query, as bars, best first.
    assert "minilm-l6" in [o.get_attribute("value") for o in Select(by_id(driver, "rerank-model")).options]
    Select(by_id(driver, "rerank-model")).select_by_value("minilm-l6")
    query = by_id(driver, "rerank-query")
    query.clear()
    query.send_keys("falling share prices")
    by_id(driver, "rerank").click()
    wait(driver, lambda d: len(d.find_elements("css selector", "[data-testid=rerank-result]")) == 4)
    ranked = driver.find_elements("css selector", "[data-testid=rerank-result]")
    assert {r.get_attribute("data-index") for r in ranked[:2]} == {"2", "3"}, [r.text for r in ranked]
    widths = [r.find_element("css selector", ".bar").size["width"] for r in ranked]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
    shot("rerank")

    # 8. A wrong key: the server's message is shown.
    key = by_id(driver, "api-key")
    key.clear()
    key.send_keys("wrong-key" + Keys.TAB)
    wait(driver, lambda d: "Incorrect API key" in by_id(d, "error").text)
    shot("wrong-key")

    outside = [u for u in urls + requested_urls(driver) if not u.startswith(server.base) and not u.startswith("data:")]
    assert outside == []


def test_docs_render_every_v1_route(server: ServeProcess, browser: Any, tmp_path: Path) -> None:
    driver = browser
    driver.get(f"{server.base}/docs")
    wait(driver, lambda d: d.find_elements("css selector", ".opblock-summary-path"), timeout=30)
    shown = {e.text.replace("\u200b", "") for e in driver.find_elements("css selector", ".opblock-summary-path")}
    spec = httpx.get(f"{server.base}/openapi.json").json()
    routes = {p for p in spec["paths"] if p.startswith("/v1")}
    assert routes and routes <= shown, routes - shown
    assert "Unable to render" not in driver.page_source
    driver.save_screenshot(str(tmp_path / "docs.png"))
    outside = [u for u in requested_urls(driver) if not u.startswith(server.base) and not u.startswith("data:")]
    assert outside == []
