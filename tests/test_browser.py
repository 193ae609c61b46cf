"""The web page in a real headless Chromium, against the real server on a small collection
of scikit-image's sample photos: search by an uploaded image, by a box drawn on it, by a text
(alone or with an image) and filters, open a result's evidence, edit an image's annotations,
and rename a person.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package, and skips
without them. Each test saves a screenshot in its tmp dir, and also in the folder named by
``LOOKALIKE_SCREENSHOTS`` when set (``docs/images`` holds the ones the README shows).
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("needs Debian's chromium and chromium-driver", allow_module_level=True)
pytest.importorskip("selenium")
pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")
pytest.importorskip("dlib")
pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

import uvicorn  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from lookalike import (  # noqa: E402
    Collection,
    FacesChannelConfig,
    GlobalChannelConfig,
    LocalChannelConfig,
)
from lookalike.collection import RegionsChannelConfig, TextChannelConfig  # noqa: E402
from lookalike.server.app import create_app  # noqa: E402

pytestmark = pytest.mark.slow

TOKEN = "secret-token"
WAIT_S = 30
SCORE = re.compile(r"^(\d{1,3}%|–)$")  # the confidence, as a percentage


# -- the collection, the server and the browser ---------------------------------------------

def sample_photos() -> dict[str, np.ndarray]:
    left, right, _ = skimage_data.stereo_motorcycle()
    astronaut = skimage_data.astronaut()
    return {
        "astronaut.png": astronaut,
        "astronaut_mirror.png": astronaut[:, ::-1],
        "camera.png": skimage_data.camera(),
        "coffee.png": skimage_data.coffee(),
        "chelsea.png": skimage_data.chelsea(),
        "rocket.png": skimage_data.rocket(),
        "motorcycle_left.png": left,
        "motorcycle_right.png": right,
        "immunohistochemistry.png": skimage_data.immunohistochemistry(),
    }


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name, image in sample_photos().items():
        Image.fromarray(np.ascontiguousarray(image)).save(folder / name)
    return folder


# The user's own annotations of some photos, added after indexing.
USER_NOTES = {"coffee.png": {"tags": ["espresso", "morning"], "categories": ["drinks"]},
              "chelsea.png": {"tags": ["tabby cat"], "categories": ["pets"]}}


@pytest.fixture(scope="module")
def collection_root(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample photos indexed with every channel, people grouped, some photos tagged."""
    root = tmp_path_factory.mktemp("collection") / "c"
    with Collection(root, channels=["global", "local", "faces", "regions", "text"],
        configs={"global": GlobalChannelConfig(extractor="thumbnail"),
                 "local": LocalChannelConfig(max_features=400, branching=6, depth=4),
                 "faces": FacesChannelConfig(),
                 "regions": RegionsChannelConfig(extractor="thumbnail", grid_levels=(2,)),
                 "text": TextChannelConfig()}) as collection:
        report = collection.index([photos])
        assert report.added == len(sample_photos()) and not report.failures
        assert collection.people.update().new_people == 2  # the astronaut and the cameraman
        ids = {Path(record.path).name: record.id for record in collection.images()}
        for name, notes in USER_NOTES.items():
            collection.annotations.set(ids[name], **notes)
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(collection_root: Path) -> Iterator[str]:
    """The real app on a free loopback port, in a background thread; yields its URL."""
    port = free_port()
    config = uvicorn.Config(create_app(collection_root, token=TOKEN), host="127.0.0.1",
                            port=port, log_level="warning")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not runner.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    runner.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--window-size=1280,800",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    # The page itself is 1280x800, whatever the window's own bars take.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    yield browser
    browser.quit()


@pytest.fixture
def page(driver: WebDriver, server: str) -> WebDriver:
    """The page, freshly loaded on the search view with no token kept."""
    driver.get(f"{server}/#search")
    driver.execute_script("localStorage.clear()")
    driver.refresh()
    wait_ready(driver)
    return driver


def wait_ready(driver: WebDriver) -> None:
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")


def until(driver: WebDriver, condition: object, message: str = "") -> object:
    return WebDriverWait(driver, WAIT_S, ignored_exceptions=[StaleElementReferenceException]
                         ).until(condition, message)


def screenshot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    """Save a screenshot in the test's tmp dir, and in $LOOKALIKE_SCREENSHOTS when set."""
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    folder = os.environ.get("LOOKALIKE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        # A palette keeps the committed pictures small (a few hundred kB at most).
        with Image.open(path) as image:
            image.convert("RGB").quantize(colors=256).save(Path(folder) / name, optimize=True)
    return path


# -- helpers over the page -------------------------------------------------------------------

def error_text(driver: WebDriver) -> str:
    box = driver.find_element(By.ID, "error")
    return box.text if box.is_displayed() else ""


def searches(driver: WebDriver) -> int:
    """How many searches the page has shown the answer of."""
    return int(driver.find_element(By.ID, "results").get_attribute("data-searches") or 0)


def upload(driver: WebDriver, path: Path, channel: str = "auto") -> list[WebElement]:
    """Choose ``path`` as the query and wait for the results of its search."""
    Select(driver.find_element(By.ID, "channel")).select_by_value(channel)
    before = searches(driver)
    driver.find_element(By.ID, "file-input").send_keys(str(path))
    until(driver, lambda d: searches(d) > before or error_text(d), "no search answer")
    assert not error_text(driver)
    return driver.find_elements(By.CSS_SELECTOR, "#results .result")


def texts(driver: WebDriver, selector: str) -> list[str]:
    """The texts of what ``selector`` finds, read at once (the page redraws lists whole)."""
    return list(driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", selector))


def result_names(driver: WebDriver) -> list[str]:
    return texts(driver, "#results .result .name")


def canvas_has_drawing(driver: WebDriver, canvas_id: str) -> bool:
    """Whether the canvas holds more than one colour (an image was drawn on it)."""
    return bool(driver.execute_script("""
        const canvas = document.getElementById(arguments[0]);
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length && seen.size < 16; i += 4 * 97) seen.add(data[i]);
        return canvas.width > 0 && seen.size >= 16;""", canvas_id))


def search_text(driver: WebDriver, text: str) -> list[str]:
    """Type ``text`` in the text box, press Enter, and wait for the answer; the names found."""
    box = driver.find_element(By.ID, "text-query")
    box.clear()
    before = searches(driver)
    box.send_keys(text, Keys.ENTER)
    until(driver, lambda d: searches(d) > before or error_text(d), f"no search for {text!r}")
    assert not error_text(driver)
    return result_names(driver)


def choose(driver: WebDriver, select_id: str, value: str) -> None:
    """Choose ``value`` in a select that searches again on a change, and wait for the answer."""
    before = searches(driver)
    Select(driver.find_element(By.ID, select_id)).select_by_value(value)
    until(driver, lambda d: searches(d) > before or error_text(d), f"no search on {value!r}")
    assert not error_text(driver)


def reasons(driver: WebDriver) -> list[str]:
    return texts(driver, "#results .result .reason")


def open_result(driver: WebDriver, name: str) -> WebElement:
    """Open the detail of the result named ``name``; the dialog, its evidence drawn."""
    driver.find_elements(By.CSS_SELECTOR, "#results .result")[
        result_names(driver).index(name)].click()
    detail = driver.find_element(By.ID, "detail")
    until(driver, ec.visibility_of(detail), "no detail view")
    canvas = driver.find_element(By.ID, "detail-canvas")
    until(driver, lambda d: canvas.get_attribute("data-drawn") == "true", "no evidence drawn")
    return detail


def annotations(driver: WebDriver) -> dict[str, str]:
    """The annotations the detail lists, "kind text" -> annotation id, once they are loaded."""
    until(driver, lambda d: d.find_element(By.ID, "annotations").get_attribute("data-loaded")
          == "true", "the annotations did not load")
    return dict(driver.execute_script(
        "return [...document.querySelectorAll('#annotations .annotation')].map(e => ["
        "e.querySelector('.kind').textContent + ' ' + e.querySelector('.note-text').textContent,"
        " e.dataset.annotationId])"))


def open_people(driver: WebDriver) -> list[WebElement]:
    driver.find_element(By.ID, "people-tab").click()
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#people .person"), "no people")
    return driver.find_elements(By.CSS_SELECTOR, "#people .person")


def person_names(driver: WebDriver) -> list[str]:
    return texts(driver, "#people .person .person-name")


# -- the tests --------------------------------------------------------------------------------

def test_upload_a_query_and_see_results(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    channels = [o.get_attribute("value")
                for o in page.find_elements(By.CSS_SELECTOR, "#channel option")]
    assert channels[0] == "auto"
    assert sorted(channels[1:]) == ["faces", "global", "local", "regions", "text"]
    cards = upload(page, photos / "motorcycle_left.png")
    assert len(cards) == len(sample_photos())
    names = result_names(page)
    assert names[:2] == ["motorcycle_left.png", "motorcycle_right.png"]
    first = cards[0]
    assert first.find_element(By.CLASS_NAME, "rank").text == "#1"
    assert SCORE.match(first.find_element(By.CLASS_NAME, "score").text)
    assert re.search(r"\d+ matching points \(same object\)",
                     cards[1].find_element(By.CLASS_NAME, "reason").text)
    assert "looks similar" in first.find_element(By.CLASS_NAME, "reason").text
    until(page, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#results img')].every(i => i.complete "
        "&& i.naturalWidth > 0)"), "thumbnails did not load")
    assert canvas_has_drawing(page, "query-canvas")
    screenshot(page, tmp_path, "web_search.png")


def test_drop_and_paste_an_image(page: WebDriver, tmp_path: Path) -> None:
    """A file dropped on the page, or pasted, becomes the query (here a stored image's file)."""
    for event, wanted in (("drop", "chelsea.png"), ("paste", "coffee.png")):
        image_id = page.execute_script(
            "return fetch('/images?limit=500').then(r => r.json()).then(d => "
            "d.images.find(i => i.name === arguments[0]).id)", wanted)
        before = searches(page)
        page.execute_script("""
            const [event, id, done] = arguments;
            fetch(`/images/${id}`).then(r => r.blob()).then(blob => {
              const data = new DataTransfer();
              data.items.add(new File([blob], 'query.png', {type: blob.type}));
              const target = event === 'drop' ? document.getElementById('drop-zone') : document;
              target.dispatchEvent(event === 'drop'
                ? new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true})
                : new ClipboardEvent('paste', {clipboardData: data, bubbles: true}));
            });""", event, image_id)
        until(page, lambda d, n=before: searches(d) > n or error_text(d), f"no search on {event}")
        assert not error_text(page)
        assert result_names(page)[0] == wanted, event
    screenshot(page, tmp_path, "web_paste.png")


def test_paging_and_keyboard(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    k = page.find_element(By.ID, "k")
    k.clear()
    k.send_keys("4")
    upload(page, photos / "coffee.png", channel="global")
    first_page = result_names(page)
    assert len(first_page) == 4 and first_page[0] == "coffee.png"
    page.find_element(By.ID, "next-page").click()
    until(page, lambda d: d.find_element(By.ID, "page-info").text.startswith("5"), "no page 2")
    second_page = result_names(page)
    assert len(second_page) == 4 and not set(first_page) & set(second_page)
    page.find_element(By.ID, "prev-page").click()
    until(page, lambda d: result_names(d) == first_page, "no way back to page 1")
    # Arrow keys move between results, Enter opens one and Escape closes it.
    page.find_element(By.CSS_SELECTOR, "#results .result").send_keys(Keys.ARROW_RIGHT)
    assert page.switch_to.active_element.get_attribute("data-index") == "1"
    page.switch_to.active_element.send_keys(Keys.ENTER)
    detail = page.find_element(By.ID, "detail")
    until(page, ec.visibility_of(detail), "Enter opened no detail")
    assert page.find_element(By.ID, "detail-title").text == first_page[1]
    page.switch_to.active_element.send_keys(Keys.ESCAPE)
    until(page, ec.invisibility_of_element(detail), "Escape did not close the detail")
    assert page.switch_to.active_element.get_attribute("data-index") == "1"
    screenshot(page, tmp_path, "web_paging.png")


def drag_box(driver: WebDriver, box: tuple[int, int, int, int]) -> None:
    """Drag a box on the query canvas, given in the query's own pixels."""
    canvas = driver.find_element(By.ID, "query-canvas")
    scale, width, height = driver.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect();"
        "return [r.width / c.dataset.naturalWidth, r.width, r.height];", canvas)
    x0, y0, x1, y1 = (v * scale for v in box)
    (ActionChains(driver)
     .move_to_element_with_offset(canvas, int(x0 - width / 2), int(y0 - height / 2))
     .click_and_hold()
     .move_to_element_with_offset(canvas, int((x0 + x1) / 2 - width / 2),
                                  int((y0 + y1) / 2 - height / 2))
     .move_to_element_with_offset(canvas, int(x1 - width / 2), int(y1 - height / 2))
     .release()
     .perform())


def test_draw_a_crop_box_and_search_by_it(page: WebDriver, photos: Path,
                                          tmp_path: Path) -> None:
    upload(page, photos / "astronaut.png")
    assert result_names(page)[0] == "astronaut.png"
    face = (150, 30, 300, 210)  # the astronaut's face, in the photo's pixels
    drag_box(page, face)
    status = page.find_element(By.ID, "search-status")
    until(page, lambda d: "inside" in status.text or error_text(d), "no search by the box")
    assert not error_text(page)
    # The server got the box in the photo's own pixels (the canvas shows it smaller).
    sent = [int(v) for v in re.search(r"inside ([\d,]+)", status.text).group(1).split(",")]
    assert np.abs(np.array(sent) - np.array(face)).max() <= 3, sent
    names = result_names(page)
    assert set(names[:2]) == {"astronaut.png", "astronaut_mirror.png"}
    reasons = [r.text for r in page.find_elements(By.CSS_SELECTOR, "#results .reason")]
    assert "same person" in reasons[0] or "Eileen Collins" in reasons[0]
    assert not page.find_element(By.ID, "clear-box").get_attribute("disabled")
    screenshot(page, tmp_path, "web_crop.png")
    # The face evidence: the box found in the query and the face in the result.
    page.find_elements(By.CSS_SELECTOR, "#results .result")[names.index(
        "astronaut_mirror.png")].click()
    detail_canvas = page.find_element(By.ID, "detail-canvas")
    until(page, lambda d: detail_canvas.get_attribute("data-drawn") == "true", "no evidence")
    assert detail_canvas.get_attribute("data-faces") == "1"
    page.find_element(By.ID, "detail-close").click()
    page.find_element(By.ID, "clear-box").click()
    until(page, lambda d: "inside" not in status.text and status.text != "Searching…",
          "clearing the box searched nothing")


def test_open_a_results_evidence(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    upload(page, photos / "motorcycle_left.png")
    names = result_names(page)
    page.find_elements(By.CSS_SELECTOR, "#results .result")[names.index(
        "motorcycle_right.png")].click()
    detail = page.find_element(By.ID, "detail")
    until(page, ec.visibility_of(detail), "no detail view")
    canvas = page.find_element(By.ID, "detail-canvas")
    until(page, lambda d: canvas.get_attribute("data-drawn") == "true", "the evidence not drawn")
    assert not error_text(page)
    assert int(canvas.get_attribute("data-matches")) >= 10  # the inlier lines
    assert canvas_has_drawing(page, "detail-canvas")
    assert page.find_element(By.ID, "detail-title").text == "motorcycle_right.png"
    facts = page.find_element(By.ID, "detail-facts").text
    assert "inliers" in facts and "transform" in facts
    screenshot(page, tmp_path, "web_evidence.png")
    page.find_element(By.ID, "detail").send_keys(Keys.ESCAPE)
    until(page, ec.invisibility_of_element(detail), "Escape did not close the detail")


def test_step_through_results_in_the_detail_view(page: WebDriver, photos: Path) -> None:
    upload(page, photos / "motorcycle_left.png")
    names = result_names(page)
    detail = open_result(page, names[0])
    assert not page.find_element(By.ID, "detail-previous").is_enabled()
    page.find_element(By.ID, "detail-next").click()
    until(page, lambda d: d.find_element(By.ID, "detail-title").text == names[1],
          "Next did not show the second result")
    detail.send_keys(Keys.ARROW_RIGHT)
    until(page, lambda d: d.find_element(By.ID, "detail-title").text == names[2],
          "the right arrow did not show the third result")
    detail.send_keys(Keys.ARROW_LEFT)
    until(page, lambda d: d.find_element(By.ID, "detail-title").text == names[1],
          "the left arrow did not go back")
    assert not error_text(page)


def test_the_page_fits_a_phone(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    # A headless window keeps its size; Chrome's device emulation gives the page a phone's.
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        assert page.execute_script("return window.innerWidth") == 390
        upload(page, photos / "motorcycle_left.png")
        overflow = page.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0  # no sideways scrolling
        query, results = (page.find_element(By.ID, name) for name in ("drop-zone", "results"))
        # One column: the results below the query, not beside it.
        assert results.location["y"] > query.location["y"] + query.size["height"] - 1
        assert abs(results.location["x"] - query.location["x"]) < 20
        screenshot(page, tmp_path, "web_phone.png")
        open_result(page, result_names(page)[1])
        assert page.execute_script(
            "return document.getElementById('detail').getBoundingClientRect().right"
            " <= window.innerWidth")
        screenshot(page, tmp_path, "web_phone_detail.png")
        page.find_element(By.ID, "detail").send_keys(Keys.ESCAPE)
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_more_like_a_result(page: WebDriver, photos: Path) -> None:
    upload(page, photos / "astronaut.png")
    before = searches(page)
    open_result(page, "motorcycle_left.png")
    page.find_element(By.ID, "more-like-this").click()
    until(page, lambda d: searches(d) > before, "More like this did not search")
    assert not error_text(page)
    assert result_names(page)[:2] == ["motorcycle_left.png", "motorcycle_right.png"]


def test_rename_a_person(page: WebDriver, tmp_path: Path) -> None:
    page.find_element(By.ID, "token").send_keys(TOKEN)
    people = open_people(page)
    counts = [card.text for card in people]
    assert any("2 faces" in text for text in counts), counts
    astronaut = next(card for card in people if "2 faces" in card.text)
    astronaut.click()
    name_input = page.find_element(By.ID, "person-name-input")
    until(page, ec.visibility_of(name_input), "no person panel")
    assert len(page.find_elements(By.CSS_SELECTOR, "#faces .face")) == 2
    name_input.clear()
    name_input.send_keys("Eileen Collins")
    page.find_element(By.ID, "rename-button").click()
    until(page, lambda d: "Eileen Collins" in person_names(d) or error_text(d), "not renamed")
    assert not error_text(page)
    # The name is the server's, and the token is kept, after a reload.
    page.refresh()
    wait_ready(page)
    until(page, lambda d: "Eileen Collins" in person_names(d), "the name is gone after reload")
    assert page.find_element(By.ID, "token").get_attribute("value") == TOKEN
    page.find_elements(By.CSS_SELECTOR, "#people .person")[
        person_names(page).index("Eileen Collins")].click()
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces .face")) == 2,
          "no faces shown")
    until(page, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#people-view img')].every(i => i.complete "
        "&& i.naturalWidth > 0)"), "face thumbnails did not load")
    screenshot(page, tmp_path, "web_people.png")


def test_a_wrong_token_shows_the_servers_reason(page: WebDriver, tmp_path: Path) -> None:
    page.find_element(By.ID, "token").send_keys("not-the-token")
    open_people(page)[0].click()
    name_input = page.find_element(By.ID, "person-name-input")
    until(page, ec.visibility_of(name_input), "no person panel")
    name_input.clear()
    name_input.send_keys("Someone")
    page.find_element(By.ID, "rename-button").click()
    until(page, error_text, "no error shown")
    assert "401" in error_text(page) and "token" in error_text(page)
    assert "Token box" in error_text(page)  # where to put it
    assert "Someone" not in person_names(page)
    screenshot(page, tmp_path, "web_error.png")


def test_split_and_merge_people(page: WebDriver, tmp_path: Path) -> None:
    page.find_element(By.ID, "token").send_keys(TOKEN)
    people = open_people(page)
    before = len(people)
    astronaut = next(card for card in people if "2 faces" in card.text)
    original = astronaut.get_attribute("data-person-id")
    astronaut.click()
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces .face-select")) == 2,
          "no faces")
    page.find_elements(By.CSS_SELECTOR, "#faces .face-select")[1].click()
    page.find_element(By.ID, "split-button").click()
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#people .person")) == before + 1
          or error_text(d), "no split")
    assert not error_text(page)
    chosen = page.find_element(By.CSS_SELECTOR, "#people .person.chosen")
    split_off = chosen.get_attribute("data-person-id")
    assert split_off != original and "1 face" in chosen.text
    screenshot(page, tmp_path, "web_split.png")
    # Merge the two halves back together: the first ticked is the one kept.
    for person_id in (original, split_off):
        page.find_element(By.CSS_SELECTOR,
                          f'#people .person[data-person-id="{person_id}"] .person-select').click()
    page.find_element(By.ID, "merge-button").click()
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#people .person")) == before
          or error_text(d), "no merge")
    assert not error_text(page)
    merged = page.find_element(By.CSS_SELECTOR, f'#people .person[data-person-id="{original}"]')
    assert "2 faces" in merged.text


def test_search_by_text_and_filters(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    names = search_text(page, "kitty")
    assert names[0] == "chelsea.png"  # tagged "tabby cat"
    assert "tag: 'tabby cat'" in reasons(page)[0]
    status = page.find_element(By.ID, "search-status")
    assert "“kitty”" in status.text and "image" not in status.text
    # A search by text alone has no query image.
    assert "has-query" not in (page.find_element(By.ID, "drop-zone").get_attribute("class") or "")
    assert not page.find_element(By.ID, "query-canvas").is_displayed()
    until(page, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#results img')].every(i => i.complete "
        "&& i.naturalWidth > 0)"), "thumbnails did not load")
    screenshot(page, tmp_path, "web_text.png")
    # A filter searches again at once; then a text inside it.
    categories = [o.get_attribute("value")
                  for o in page.find_elements(By.CSS_SELECTOR, "#filter-category option")]
    assert categories == ["", "drinks", "pets"]
    choose(page, "filter-category", "drinks")
    assert set(result_names(page)) <= {"coffee.png"}
    assert search_text(page, "coffee") == ["coffee.png"]
    assert "in drinks" in status.text
    choose(page, "filter-category", "")
    folder = page.find_element(By.ID, "filter-folder")
    for typed, wanted in ((str(photos / "elsewhere"), []), (str(photos), ["coffee.png"])):
        # Typed over what is there (clear() would leave the field, a search without a folder).
        folder.send_keys(Keys.CONTROL, "a")
        folder.send_keys(typed, Keys.ENTER)
        until(page, lambda d, t=typed: f"under {t} by " in status.text or error_text(d),
              "no search by folder")
        assert not error_text(page) and result_names(page)[:1] == wanted
    # The learned fusion needs a trained ranker: the server's reason is shown.
    Select(page.find_element(By.ID, "fusion")).select_by_value("learned")
    until(page, error_text, "no error for the learned fusion")
    assert "400" in error_text(page) and "ranker" in error_text(page)
    choose(page, "fusion", "weighted")
    assert result_names(page)[0] == "coffee.png" and "weighted" in status.text
    # Without a text or an image there is nothing to search by.
    page.find_element(By.ID, "clear-text").click()
    until(page, lambda d: not result_names(d) and not status.text, "the results stayed")


def test_search_by_image_and_text(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    upload(page, photos / "astronaut.png")
    names = search_text(page, "rocket")
    status = page.find_element(By.ID, "search-status")
    assert "for the image and “rocket”" in status.text
    assert names[0] == "astronaut.png" and "rocket.png" in names
    # The text clue quotes the automatic label it matched (weak: the model was unsure).
    assert "label: " in reasons(page)[names.index("rocket.png")]
    screenshot(page, tmp_path, "web_image_text.png")
    # Dropping the image leaves the text alone.
    before = searches(page)
    page.find_element(By.ID, "clear-query").click()
    until(page, lambda d: searches(d) > before or error_text(d), "no search by the text alone")
    assert not error_text(page) and "image" not in status.text and "“rocket”" in status.text
    assert result_names(page)[0] == "rocket.png"


def test_crop_search_by_regions(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    upload(page, photos / "chelsea.png", channel="regions")
    status = page.find_element(By.ID, "search-status")
    drag_box(page, (62, 4, 358, 296))  # the cat, in the photo's pixels
    until(page, lambda d: "inside" in status.text or error_text(d), "no search by the box")
    assert not error_text(page)
    assert result_names(page)[0] == "chelsea.png"
    assert "similar cat in the picture" in reasons(page)[0]
    open_result(page, "chelsea.png")
    canvas = page.find_element(By.ID, "detail-canvas")
    assert canvas.get_attribute("data-regions") == "1"
    assert canvas_has_drawing(page, "detail-canvas")
    facts = page.find_element(By.ID, "detail-facts").text
    assert "region" in facts and "cat" in facts
    screenshot(page, tmp_path, "web_regions.png")


def test_search_by_a_suggested_object(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    upload(page, photos / "chelsea.png", channel="regions")
    chips = until(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#objects .chip"),
                  "no objects suggested")
    cat = next(chip for chip in chips if chip.text.startswith("cat "))  # type: ignore[attr-defined]
    before = searches(page)
    cat.click()
    until(page, lambda d: searches(d) > before or error_text(d), "no search by the object")
    assert not error_text(page)
    assert "inside" in page.find_element(By.ID, "search-status").text
    assert page.find_element(By.ID, "box-info").text.startswith("Box ")
    assert result_names(page)[0] == "chelsea.png"
    screenshot(page, tmp_path, "web_objects.png")
    page.find_element(By.ID, "clear-query").click()
    assert not page.find_element(By.ID, "objects").is_displayed()


def test_edit_an_images_annotations(page: WebDriver, photos: Path, tmp_path: Path) -> None:
    page.find_element(By.ID, "token").send_keys(TOKEN)
    upload(page, photos / "rocket.png", channel="global")
    open_result(page, "rocket.png")
    assert any(note.startswith("label ") for note in annotations(page))  # ImageNet's
    page.find_element(By.ID, "add-tag").send_keys("launch pad", Keys.ENTER)
    until(page, lambda d: "tag launch pad" in annotations(d) or error_text(d)
          or d.find_element(By.ID, "detail-error").is_displayed(), "the tag is not listed")
    screenshot(page, tmp_path, "web_annotations.png")
    # The tag is the server's: after a reload, a search by it finds the photo.
    page.refresh()
    wait_ready(page)
    assert search_text(page, "launch pad")[0] == "rocket.png"
    open_result(page, "rocket.png")
    note = annotations(page)["tag launch pad"]
    page.find_element(By.CSS_SELECTOR, f'#annotations [data-annotation-id="{note}"] '
                                       ".remove-annotation").click()
    until(page, lambda d: "tag launch pad" not in annotations(d), "the tag was not removed")
    assert not page.find_element(By.ID, "detail-error").is_displayed()
    # Without the token, nothing can be edited.
    page.find_element(By.ID, "detail-close").click()
    page.find_element(By.ID, "token").clear()
    open_result(page, "rocket.png")
    annotations(page)
    assert not page.find_elements(By.CSS_SELECTOR, "#annotations .remove-annotation")
    assert not page.find_element(By.ID, "add-tag").is_displayed()


def test_opening_a_result_logs_a_click(page: WebDriver, collection_root: Path,
                                       tmp_path: Path) -> None:
    def clicks() -> list[tuple[str, int]]:
        with closing(sqlite3.connect(f"file:{collection_root / 'catalog.sqlite'}?mode=ro",
                                     uri=True)) as conn:
            return conn.execute("SELECT query_id, image_id FROM clicks ORDER BY rowid").fetchall()

    before = clicks()
    names = search_text(page, "kitty")
    detail = open_result(page, names[0])
    until(page, lambda d: detail.get_attribute("data-click-rank") == "1", "no click logged")
    image_id = int(page.find_element(By.CSS_SELECTOR, "#results .result").get_attribute(
        "data-image-id"))
    logged = clicks()
    assert len(logged) == len(before) + 1 and logged[-1][1] == image_id
    screenshot(page, tmp_path, "web_click.png")
