"""The tiny run's report as a user sees it: opened in a real headless browser (Debian's ``chromium``) at 1280 px.

A probe script appended to a copy of the report drives the report's own app (the global ``app`` of Snakemake's
report) after the page's scripts ran: it reads the menu, opens every result the way the eye button does (menu
beside it, so at the width a user sees it) and every result's info panel (its caption), and writes what it saw
into the page, which ``--dump-dom`` returns. Skipped with the reason when chromium is missing (``make
test-browser`` installs it as root).
"""

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from weightzoo.report import figures as plots

CATEGORIES = ["1 Findings", "2 Accuracy groups", "3 Convergence", "4 Weight statistics", "5 Distributions",
              "6 Node strength", "7 Projections", "8 Claims", "9 Training status"]
WINDOW = (1280, 1000)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed: `make test-browser` (as root) "
                                                "installs it, then this test opens the report in it"),
]

PROBE = """<script>
(function () {
  var seen = {menu: "", results: {}};
  // measure where the menu ends up, not its width animation (virtual time outruns CSS transitions)
  var still = document.createElement("style");
  still.textContent = "*{transition:none !important}";
  document.head.appendChild(still);
  var paths = Object.keys(results);
  var steps = [];
  function where(path) {
    for (var c in categories) for (var s in categories[c]) if (categories[c][s].indexOf(path) >= 0) return [c, s];
  }
  steps.push(function () { seen.menu = document.querySelector("nav").innerText; });
  paths.forEach(function (path) {
    var r = results[path], place = where(path), kind = r.mime_type.indexOf("image") === 0 ? "img" : "html";
    steps.push(function () {
      app.setView({navbarMode: "subcategory", category: place[0], subcategory: place[1], content: kind,
                   contentPath: r.data_uri, resultPath: path});
    });
    steps.push(function () {
      var entry = {category: place[0], subcategory: place[1], mime: r.mime_type,
                   listing: document.querySelector("nav").innerText};
      var img = document.querySelector("div.p-3 > img");
      if (kind === "img" && img) {
        var box = img.getBoundingClientRect();
        entry.image = {natural: [img.naturalWidth, img.naturalHeight], shown: [box.width, box.height],
                       top: box.top, bottom: box.bottom};
      }
      var frame = document.querySelector("iframe");
      if (kind === "html" && frame) {
        entry.frame = {width: frame.getBoundingClientRect().width};
      }
      seen.results[path] = entry;
      app.setView({navbarMode: "resultinfo", resultPath: path});
    });
    steps.push(function () { seen.results[path].info = document.querySelector("nav").innerText; });
  });
  function next() {
    var step = steps.shift();
    if (!step) {
      var out = document.createElement("pre");
      out.id = "weightzoo-probe";
      out.textContent = JSON.stringify(seen);
      document.body.appendChild(out);
      return;
    }
    try { step(); } catch (err) { seen.error = String(err); }
    setTimeout(next, 100);
  }
  window.addEventListener("load", function () { setTimeout(next, 300); });
})();
</script>"""


def chromium(url: str, *args: str, timeout: int = 180, window=WINDOW) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}", "--hide-scrollbars", *args, url],
            capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def seen(tiny_report, tmp_path_factory):
    """What the browser showed: the menu, and per result its place, size on screen, listing and info panel."""
    workdir, html = tiny_report
    head, body_end, tail = html.rpartition("</body>")
    probe = tmp_path_factory.mktemp("browser") / "report_probe.html"
    probe.write_text(head + PROBE + body_end + tail, encoding="utf-8")
    budget = 3000 + 500 * html.count('"mime_type"')
    dom = chromium(probe.as_uri(), f"--virtual-time-budget={budget}", "--dump-dom")
    match = re.search(r'<pre id="weightzoo-probe">(.*?)</pre>', dom, re.S)
    assert match, "the probe did not finish: " + dom[-2000:]
    text = match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    data = json.loads(text)
    assert "error" not in data, data.get("error")
    return workdir, data


def captions(workdir) -> dict[str, str]:
    """First words of every caption file the workflow uses (before any Jinja)."""
    out = {}
    for path in (Path(__file__).resolve().parents[1] / "workflow/report").glob("*.rst"):
        if path.name == "workflow.rst":
            continue
        words = re.split(r"\{\{|\{%", path.read_text(encoding="utf-8"))[0].split()[:4]
        out[path.name] = " ".join(words)
    return out


def test_every_category_is_in_the_menu(seen):
    _, data = seen
    menu = data["menu"]
    for category in CATEGORIES:
        assert category in menu, (category, menu)
    positions = [menu.index(category) for category in CATEGORIES]
    assert positions == sorted(positions), "categories are listed in their numbered order"


def test_every_result_shows_its_caption(seen):
    workdir, data = seen
    assert data["results"], "no results in the report"
    first_words = captions(workdir)
    shown = "\n".join(entry["info"] for entry in data["results"].values()).replace("\u2019", "'")
    for name, words in first_words.items():
        if name in {"summary_groups.rst"}:
            continue
        assert words in shown, f"caption {name} ({words!r}) is shown for no result"
    for path, entry in data["results"].items():
        assert len(entry["info"]) > 80, (path, entry["info"])


def test_figures_are_not_shrunk_below_9pt_and_fit_the_window(seen):
    """A figure shown at scale s has its smallest text at MIN_FONT pt x DPI / 72 x s screen pixels: at least 12 px
    (9 pt of a browser); and a figure taller than the window would lose its top (the report centres it)."""
    _, data = seen
    images = {path: entry["image"] for path, entry in data["results"].items() if "image" in entry}
    assert len(images) >= 18
    for path, image in images.items():
        scale = image["shown"][0] / image["natural"][0]
        assert plots.MIN_FONT * plots.DPI / 72 * scale >= 12, (path, image)
        assert image["top"] >= 0, (path, image)


WIDTH_PROBE = """<script>window.addEventListener("load", function () {
  var out = document.createElement("pre");
  out.id = "weightzoo-probe";
  // a table in a scrolling wrapper hides columns as surely as a page that scrolls: take the widest right edge
  var right = document.documentElement.scrollWidth;
  document.querySelectorAll("table").forEach(function (t) { right = Math.max(right, t.getBoundingClientRect().right); });
  out.textContent = JSON.stringify({page: Math.ceil(right), window: window.innerWidth});
  document.body.appendChild(out);
});</script>"""


def test_tables_wrap_instead_of_hiding_columns(seen, tmp_path):
    """Every HTML item, opened alone in a window as wide as the frame the report shows it in, needs no
    horizontal scrolling: long cells wrap, no column is cut off."""
    workdir, data = seen
    frames = {path: entry["frame"] for path, entry in data["results"].items() if "frame" in entry}
    assert {"results/analysis/findings.html", "results/analysis/claims.html", "results/analysis/table2.html",
            "results/analysis/training_status.html"} <= set(frames)
    for path, frame in frames.items():
        page = (workdir / path).read_text(encoding="utf-8")
        head, body_end, tail = page.rpartition("</body>")
        probe = tmp_path / Path(path).name
        probe.write_text(head + WIDTH_PROBE + body_end + tail, encoding="utf-8")
        width = int(frame["width"])
        dom = chromium(probe.as_uri(), "--virtual-time-budget=1000", "--dump-dom", window=(width, 800))
        sizes = json.loads(re.search(r'<pre id="weightzoo-probe">(.*?)</pre>', dom, re.S).group(1))
        assert sizes["page"] <= sizes["window"] + 1, (path, sizes)


def test_no_csv_download_items_and_architectures_sort_naturally(seen):
    _, data = seen
    assert all(not path.endswith(".csv") for path in data["results"])
    listing = data["results"]["results/analysis/convergence/dnn/digits/h8.png"]["listing"]
    archs = re.findall(r"\bh[\s\u2007]*\d+\b", listing)
    numbers = [int(re.sub(r"\D", "", a)) for a in archs]
    assert numbers == sorted(numbers), listing


def test_screenshot_at_1280(seen, tmp_path):
    """A screenshot of the findings page opens and is not blank (look at it: tests keep it in tmp_path)."""
    workdir, _ = seen
    shot = tmp_path / "report.png"
    chromium((workdir / "report.html").as_uri(), "--virtual-time-budget=3000", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000


SHOW_FOREST = """<script>window.addEventListener("load", function () { setTimeout(function () {
  var path = "FOREST_PATH";
  for (var c in categories) for (var s in categories[c]) if (categories[c][s].indexOf(path) >= 0) {
    app.setView({navbarMode: "subcategory", category: c, subcategory: s, content: "img",
                 contentPath: results[path].data_uri, resultPath: path});
  }
}, 300); });</script>"""


def test_the_forest_plot_is_the_first_item_and_shows_at_1280(seen, tmp_path):
    """The verdicts at a glance open the report: the forest plot is listed first in the first category, and a
    screenshot of it as a user opens it at 1280 px shows the plot (its verdict colours), not a blank pane."""
    from PIL import Image

    from weightzoo.report import forest
    from weightzoo.report.html import VERDICT_COLOURS

    workdir, data = seen
    forests = sorted(p for p in data["results"] if p.startswith("results/analysis/verdicts/"))
    assert forests, "no forest plot in the report"
    entry = data["results"][forests[0]]
    assert entry["category"] == CATEGORIES[0]
    listing = data["results"]["results/analysis/findings.html"]["listing"]
    assert listing.index("at a glance") < listing.index("findings, pooled"), listing
    html = (workdir / "report.html").read_text(encoding="utf-8")
    head, body_end, tail = html.rpartition("</body>")
    page = tmp_path / "forest.html"
    # the forest with the most estimates drawn (on the tiny zoo some (model, dataset)s have none: a message figure)
    drawn = max(forests, key=lambda path: (workdir / path).stat().st_size)
    page.write_text(head + SHOW_FOREST.replace("FOREST_PATH", drawn) + body_end + tail, encoding="utf-8")
    shot = tmp_path / "forest_1280.png"
    chromium(page.as_uri(), "--virtual-time-budget=3000", f"--screenshot={shot}")
    import numpy as np

    # the content pane only: the menu's icons are green too
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=int)[:, 340:].reshape(-1, 3)
    # the equivalence bands and the coloured verdicts (the grey of "inconclusive" is left out: anti-aliased text
    # makes such greys too)
    shown = [c for v, c in VERDICT_COLOURS.items() if v != "inconclusive"] + [forest.BAND_COLOUR]
    colours = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in shown])
    # palette PNGs and the browser's colour handling move a colour by a few levels
    near = (np.abs(pixels[:, None, :] - colours[None, :, :]).max(axis=2) <= 12).any(axis=1)
    coloured = int(near.sum())
    assert coloured > 300, f"the screenshot shows no verdict colours ({coloured} pixels): {shot}"
