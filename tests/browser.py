"""Helpers for the browser tests: serve the built book on 127.0.0.1, drive Debian's Chromium
with Playwright, mirror the CDN scripts the pages ask for, and list what is wrong with a page.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import mimetypes
import shutil
import subprocess
import tarfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Scripts the pages load from CDNs, and the npm package that holds the same file. The test
# machine reaches the npm registry but no CDN, so a request for the URL (or, for a URL ending in
# "/", anything under it) is answered from the package instead; a reader online gets the CDN's.
CDN_MIRRORS = {
    "https://cdn.jsdelivr.net/npm/mathjax@3/": ("mathjax@3.2.2", ""),  # MathJax, on pages with formulas
    # bertviz's views: require.js, then d3 and jquery through it. jquery 2.0.0 is not on npm; 2.1.0 works.
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js": ("requirejs@2.3.6", "require.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/d3/5.7.0/d3.min.js": ("d3@5.7.0", "dist/d3.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.0/jquery.min.js": ("jquery@2.1.0", "dist/jquery.min.js"),
}

# Page errors that are not ours, matched by substring, each with the reason it is tolerated.
KNOWN_PAGE_ERRORS: dict[str, str] = {
    # sphinx-thebe (loaded by Jupyter Book 1.0.4 even with thebe off) declares this constant in two
    # scripts on every page; thebe is not used, so nothing breaks.
    "Identifier 'THEBE_JS_URL' has already been declared": "sphinx-thebe 0.3.1, upstream",
    # sphinx-book-theme 1.3 logs this on a first visit, before a light/dark mode is stored.
    "Got invalid theme mode": "sphinx-book-theme 1.3, upstream",
}


@dataclass
class PageReport:
    url: str
    problems: list[str]
    screenshot: Path | None = None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class _GzipHandler(_QuietHandler):
    """Text files gzipped when the browser accepts it, as GitHub Pages and Read the Docs serve them:
    what a reader downloads, for the page-weight budget."""

    COMPRESSED = (".html", ".js", ".css", ".json", ".svg", ".txt", ".map")

    def send_head(self):
        path = self.translate_path(self.path.split("?")[0])
        if not (path.endswith(self.COMPRESSED) and "gzip" in self.headers.get("Accept-Encoding", "")):
            return super().send_head()
        try:
            body = gzip.compress(Path(path).read_bytes(), 6)
        except OSError:
            return super().send_head()
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


@contextmanager
def serve(directory: Path, *, gzipped: bool = False):
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) for the duration of the block;
    ``gzipped``: text files compressed, as a static host serves them."""
    handler = functools.partial(_GzipHandler if gzipped else _QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fetch_mirrors(cache: Path) -> dict[str, Path]:
    """Download (once) the npm packages of :data:`CDN_MIRRORS`; ``{url: local file or folder}``."""
    cache.mkdir(parents=True, exist_ok=True)
    mirrors = {}
    for url, (package, path) in CDN_MIRRORS.items():
        target = cache / package.replace("@", "-").replace("/", "-")
        if not (target / "package").is_dir():
            tarball = (
                subprocess.run(
                    ["npm", "pack", package, "--silent", "--pack-destination", str(cache)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            with tarfile.open(cache / tarball) as archive:
                archive.extractall(target, filter="data")
        mirrors[url] = target / "package" / path
    return mirrors


def route_external(page, mirrors: dict[str, Path], blocked: list[str]) -> None:
    """Answer CDN requests from the local mirrors; abort (and record) every other external request."""

    def handle(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:")):
            return route.continue_()
        for prefix, local in mirrors.items():
            if url.split("?")[0] == prefix or (prefix.endswith("/") and url.startswith(prefix)):
                path = local / url[len(prefix) :].split("?")[0] if prefix.endswith("/") else local
                if path.is_file():
                    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return route.fulfill(path=str(path), content_type=content_type)
        blocked.append(url)
        return route.abort()

    page.route("**/*", handle)


# In-page checks: images that did not load, images without alt text in cell outputs, outputs
# showing a traceback or stderr.
_PAGE_CHECKS = """() => {
  const broken = Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0))
    .map(img => img.getAttribute('src'));
  const noAlt = Array.from(document.querySelectorAll('.cell_output img'))
    .filter(img => !(img.getAttribute('alt') || '').trim())
    .map(img => img.getAttribute('src'));
  const outputs = Array.from(document.querySelectorAll('.cell_output'));
  const tracebacks = outputs
    .filter(o => o.querySelector('.traceback') || /Traceback \\(most recent call last\\)|Error:/.test(o.innerText))
    .map(o => o.innerText.slice(0, 200));
  const stderr = Array.from(document.querySelectorAll('.cell_output .stderr'))
    .map(o => o.innerText.slice(0, 200));
  // Code a reader cannot see whole: a cell's code, or library source shown in an output, wider
  // than its box (the box scrolls, a screenshot or a printout cuts it).
  const cut = Array.from(document.querySelectorAll('.cell_input pre, .cell_output .text_html .highlight pre'))
    .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
    .map(pre => pre.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), ''));
  return {broken, noAlt, tracebacks, stderr, cut};
}"""


def inspect_page(
    page,
    url: str,
    screenshot: Path | None = None,
    mirrors: dict[str, Path] | None = None,
    *,
    settle: str = "networkidle",
) -> PageReport:
    """Load ``url`` and list what a reader would see go wrong on it. ``settle``: wait for the
    network to go idle, or (``"load"``) for the load event and then three seconds."""
    errors: list[str] = []
    blocked: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"JavaScript error: {error}"))
    page.on(
        "console", lambda message: errors.append(f"console error: {message.text}") if message.type == "error" else None
    )
    route_external(page, mirrors or {}, blocked)

    problems = []
    response = page.goto(url, wait_until="load")
    if response is None or not response.ok:
        problems.append(f"HTTP {response.status if response else 'no response'} for {url}")
    if settle == "networkidle":
        page.wait_for_load_state("networkidle")
    else:
        page.wait_for_timeout(3000)
    found = page.evaluate(_PAGE_CHECKS)
    problems += [f"image did not load: {src}" for src in found["broken"]]
    problems += [f"output image without alt text: {src}" for src in found["noAlt"]]
    problems += [f"cell output shows an error: {text!r}" for text in found["tracebacks"]]
    problems += [f"cell output shows stderr: {text!r}" for text in found["stderr"]]
    problems += [f"code line cut at the box's edge: {line!r}" for line in found["cut"]]
    problems += [f"request to an unmirrored external host: {url}" for url in blocked]
    problems += [e for e in errors if not any(known in e for known in KNOWN_PAGE_ERRORS)]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    return PageReport(url=url, problems=problems, screenshot=screenshot)
