"""The ``--softmax-html`` page as a person sees it: rendered by a real
headless browser (Debian's ``chromium``), the DOM read after its scripts ran
and a screenshot decoded (issue 19).  Skipped, saying why, where no chromium
binary is on the PATH (CI installs it: ``apt-get install -y chromium``)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest
from helpers import importing

BROWSER = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                if (found := shutil.which(name))), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no chromium binary on the PATH (Debian: apt-get install -y chromium)")

WINDOW = (1200, 900)
FAULT_RED = (0xDC, 0x26, 0x26)  # svg .layer-mark.fault in the page's stylesheet
NAN_PURPLE = (0x7C, 0x3A, 0xED)  # svg .nonfinite-mark


def chromium(page: Path, profile: Path, *args: str, fragment: str = "") -> subprocess.CompletedProcess[bytes]:
    """One headless chromium run on ``page``, offline, in a throw-away profile."""
    assert BROWSER is not None
    address = page.as_uri() + (f"#{fragment}" if fragment else "")
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, address]
    return subprocess.run(command, capture_output=True, timeout=120, check=True)


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG (what chromium
    writes) with the standard library: width, height and the RGB pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, header = 8, [], b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[i] = (line[i] + near[2]) & 0xFF
        pixels.extend(tuple(line[i:i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, pixels


def test_the_png_decoder_reads_what_it_is_given() -> None:
    """The decoder itself, on a PNG built here: Sub and Up filters, RGB."""
    rows = [b"\x01" + bytes([10, 20, 30, 5, 5, 5]), b"\x02" + bytes([1, 1, 1, 0, 0, 0])]
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
    assert png_pixels(png) == (2, 2, [(10, 20, 30), (15, 25, 35), (11, 21, 31), (15, 25, 35)])


@pytest.mark.needs_extra  # CI's full leg installs chromium and selects this by the mark
@needs_browser
def test_the_page_is_drawn_in_a_real_browser(pytester: pytest.Pytester, tmp_path: Path) -> None:
    importing(pytester, "deep_zoo", "model_zoo").makepyfile(test_models="""
        import pytest
        from deep_zoo import nested_encoder
        from model_zoo import lambda_softmax, lstm_softmax

        @pytest.mark.softmax_invariant(model=lstm_softmax)
        def test_lstm():
            pass

        @pytest.mark.softmax_invariant(model=nested_encoder)
        def test_encoder():
            pass

        @pytest.mark.softmax_invariant(model=lambda_softmax, max_examples=10)
        def test_healthy():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--softmax-html", "page.html", "--softmax-report",
                                "report.json")
    result.assert_outcomes(failed=2, passed=1)
    page = pytester.path / "page.html"
    checks = {c["nodeid"].rsplit("::", 1)[1]: c for c in json.loads((pytester.path / "report.json").read_text())["checks"]}

    dom = chromium(page, tmp_path / "profile-dom", "--dump-dom").stdout.decode()
    charts = re.findall(r'<svg [^>]*class="layer-chart".*?</svg>', dom, re.DOTALL)
    assert len(charts) == 2  # one per failure, none for the pass
    for chart, test in zip(charts, ["test_encoder", "test_lstm"]):  # failures in test-id order
        layers = [row["name"] for row in checks[test]["layer_profile"]]
        bars = re.findall(r'<rect class="layer-mark[^"]*" data-layer="([^"]*)"', chart)
        assert bars == layers  # one mark per layer, in execution order
        faults = re.findall(r'<rect class="layer-mark fault[^"]*" data-layer="([^"]*)"', chart)
        assert faults == [row["name"] for row in checks[test]["layer_profile"] if row["at_fault"]]
        assert len(faults) == 1
    assert 'class="margin-chart"' in dom
    assert not re.search(r'class="v-passed"[^>]* hidden', dom)

    # The page's script ran: opened as page.html#failures, it hides the passes.
    filtered = chromium(page, tmp_path / "profile-filter", "--dump-dom", fragment="failures").stdout.decode()
    hidden = re.findall(r'<(?:tr|section) class="[^"]*v-passed"[^>]*>', filtered)
    assert len(hidden) == 2 and all(" hidden" in tag for tag in hidden), hidden
    assert re.search(r'<input type="checkbox" id="failures-only"[^>]*>', filtered)

    shot = tmp_path / "page.png"
    chromium(page, tmp_path / "profile-shot", f"--screenshot={shot}")
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == WINDOW
    colours = Counter(pixels)
    assert len(colours) > 50, f"a nearly blank page: {len(colours)} colours"
    assert colours.most_common(1)[0][1] < 0.9 * width * height
    # The first chart (the encoder's) is in view: its fault bar and NaN strip are painted.
    assert colours[FAULT_RED] > 20 and colours[NAN_PURPLE] > 200
