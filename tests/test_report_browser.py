"""The report opened in a real browser (headless Chromium): every image decodes (naturalWidth > 0), every
section has content, and the page requests nothing. Chromium is installed by `make test` where possible
(Debian package ``chromium``); without it these tests are skipped, saying so.

The probe is a copy of the report with a Content-Security-Policy that forbids every fetch except data:
URIs plus a script that records, after the load event, each image's naturalWidth, the Resource Timing
entries and every blocked request into attributes that ``--dump-dom`` prints. A control page with one
external image proves the probe sees a request when there is one.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from test_report_fixtures import report_sweep, script_run  # noqa: F401 - session fixtures

PROBE = """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<script>
var blocked = [];
document.addEventListener("securitypolicyviolation", function (e) { blocked.push(e.blockedURI); });
window.addEventListener("load", function () { setTimeout(function () {
  var b = document.body;
  b.setAttribute("data-widths", JSON.stringify(Array.from(document.images, function (i) { return i.naturalWidth; })));
  b.setAttribute("data-resources", JSON.stringify(performance.getEntriesByType("resource").map(function (r) { return r.name; })));
  b.setAttribute("data-blocked", JSON.stringify(blocked));
  b.setAttribute("data-probed", "yes");
}, 100); });
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("chromium is not installed (`make test` installs the Debian package where it runs as root); "
                "the report's browser checks need it")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def probe(page: Path, tmp_path: Path, inject: str = "") -> dict:
    """Open a probed copy of ``page``; returns widths, resources, blocked requests and the sections' texts."""
    text = page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1).replace("<main>", "<main>" + inject, 1)
    copy = tmp_path / f"probe-{page.stem}.html"
    copy.write_text(text, encoding="utf-8")
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", copy.as_uri()).stdout
    attributes = dict(re.findall(r'data-(widths|resources|blocked|probed)="([^"]*)"', dom))
    assert attributes.get("probed") == "yes", "the probe script did not run"
    found = {key: json.loads(html.unescape(attributes[key])) for key in ("widths", "resources", "blocked")}
    found["sections"] = {key: re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()
                         for key, body in re.findall(r'<section id="([^"]+)"[^>]*>(.*?)</section>', dom, re.S)}
    return found


def check_page(page: Path, tmp_path: Path) -> dict:
    found = probe(page, tmp_path)
    assert found["widths"] and all(width > 0 for width in found["widths"]), found["widths"]
    assert found["resources"] == [] and found["blocked"] == []
    assert len(found["sections"]) == 7
    for key, text in found["sections"].items():
        heading = re.match(r"\d\. [^.]*?(?= [A-Z(])", text)
        assert len(text) - len(heading.group(0) if heading else "") > 60, f"section {key} is empty: {text!r}"
    return found


def screenshot(page: Path, out: Path) -> Path:
    from PIL import Image

    _chromium("--window-size=1200,3000", f"--screenshot={out}", page.as_uri())
    with Image.open(out) as image:
        colours = image.convert("RGB").resize((300, 750)).getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, "the screenshot is (nearly) blank"
    return out


def test_control_page_with_an_external_image_is_caught(report_sweep, tmp_path):
    from bayesvae.report import write_report

    page = write_report(report_sweep / "vae", tmp_path / "vae.html")
    found = probe(page, tmp_path, inject='<img src="http://example.invalid/x.png">')
    assert found["widths"][0] == 0
    assert "http://example.invalid/x.png" in found["blocked"]


def test_one_run_report_in_the_browser(report_sweep, tmp_path):
    from bayesvae.report import write_report

    page = write_report(report_sweep / "vae", tmp_path / "vae.html")
    found = check_page(page, tmp_path)
    assert "MCMC clouds" in found["sections"]["posterior"]
    screenshot(page, tmp_path / "vae.png")


def test_sweep_report_in_the_browser(report_sweep, tmp_path):
    from bayesvae.report import write_report

    page = write_report(report_sweep, tmp_path / "sweep.html")
    found = check_page(page, tmp_path)
    assert "rate–distortion plane" in found["sections"]["ae-vae-beta"]
    assert "k-NN accuracy" in found["sections"]["grouping"]
    screenshot(page, tmp_path / "sweep.png")


def test_user_script_report_in_the_browser(script_run, tmp_path):
    from bayesvae.report import write_report

    page = write_report(script_run, tmp_path / "script.html")
    found = check_page(page, tmp_path)
    assert "code/vae_template.py" in found["sections"]["bayes"]
