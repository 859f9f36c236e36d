"""Screenshots of the built book (./run_all.sh book) in headless Chromium, offline.

    python3 scripts/book_screenshot.py                      # the pages docs/book/screenshots/ keeps (PAGES)
    python3 scripts/book_screenshot.py PAGE OUT.png [...]   # PAGE relative to build/book/html, then
        # optionally #ID (scroll to that section) and " SELECTOR" (to the first such element in it):
        #   'notebooks/03_jumprelu.html#claims-check .cell_output' /tmp/03_claims.png

Chromium comes from Debian's packages (``apt-get install chromium``) and runs with no host name resolving,
so a page that needed the network would show it. ``chromium --screenshot`` leaves the page blank when the
URL has a #fragment, so the browser is driven over the DevTools protocol instead (``--remote-debugging-pipe``,
standard library only): load the page, wait for MathJax to typeset, scroll to the section (or the element in
it), shoot the viewport. No dependency beyond Python 3 and Chromium; with pngquant on PATH (``apt-get install pngquant``) each
PNG is quantised to 256 colours, about a third of the size, with no visible change (docs/book/screenshots/ keeps
those).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "build" / "book" / "html"
PAGES = [  # (page, screenshot): the landing page, and a notebook's figure and its claims table
    ("README.html", "docs/book/screenshots/landing.png"),
    ("notebooks/02_batchtopk.html#the-paper-s-panels .cell_output", "docs/book/screenshots/02_batchtopk_figure.png"),
    ("notebooks/02_batchtopk.html#claims-check .cell_output", "docs/book/screenshots/02_batchtopk_claims.png"),
]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chromium-headless-shell")

# In the page, after load: MathJax's typesetting (if the page has math), then the target near the top (the
# URL has no #fragment, which would also tint the section's heading as :target), clear of the sticky header.
SETTLE = """(async (id, sel) => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const root = id ? document.getElementById(id) : document;
  const el = root && (sel ? root.querySelector(sel) : root);
  const what = (id ? "#" + id : "") + (sel ? " " + sel : "");
  if (!el) return "not found: " + what;
  if (el !== document) { el.scrollIntoView({block: "start"}); window.scrollBy(0, -64); }
  await new Promise(r => setTimeout(r, 300));
  return el === document ? "top" : "at " + what;
})(%s, %s)"""


class Browser:
    """Headless Chromium over --remote-debugging-pipe: JSON messages ending in NUL on fds 3 (in) and 4 (out)."""

    def __init__(self, exe: str, width: int, height: int):
        self.profile = tempfile.mkdtemp(prefix="book-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # Chromium reads fd 3 and writes fd 4: the child's ends go there (dup2 makes them inheritable; the
        # pipes' other fds are not inheritable, so exec closes them, and close_fds=False keeps 3 and 4).
        def fds():
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)   # above 4, so that neither is overwritten
            os.dup2(r, 3)
            os.dup2(w, 4)
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--no-default-browser-check", "--host-resolver-rules=MAP * ~NOTFOUND",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.size = (width, height)

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ev = self._read(deadline - time.monotonic())
            if ev.get("method") == method:
                return ev
            self.events.append(ev)
        raise TimeoutError(f"no {method} from Chromium")

    def shoot(self, url: str, png: Path, anchor: str = "", select: str = "") -> str:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        s = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        w, h = self.size
        self.send("Emulation.setDeviceMetricsOverride", s, width=w, height=h, deviceScaleFactor=1, mobile=False)
        self.send("Page.enable", s)
        self.events.clear()
        self.send("Page.navigate", s, url=url)
        self.wait_event("Page.loadEventFired")
        where = self.send("Runtime.evaluate", s, expression=SETTLE % (json.dumps(anchor), json.dumps(select)),
                          awaitPromise=True, returnByValue=True)
        data = self.send("Page.captureScreenshot", s, format="png")["data"]
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(data))
        self.send("Target.closeTarget", targetId=target)
        return where.get("result", {}).get("value", "?")

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="*", metavar="PAGE OUT.png", help="pages (relative to build/book/html) and files")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    args = ap.parse_args()
    if len(args.pairs) % 2:
        ap.error("give PAGE OUT.png pairs")
    pairs = list(zip(args.pairs[::2], args.pairs[1::2])) or PAGES
    exe = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if exe is None:
        sys.exit("no Chromium on PATH: apt-get install chromium")
    if not (HTML / "index.html").exists():
        sys.exit(f"no book in {HTML.relative_to(ROOT)}: run ./run_all.sh book first")
    browser = Browser(exe, args.width, args.height)
    rc = 0
    try:
        for page, out in pairs:
            target, _, select = page.partition(" ")
            file, _, anchor = target.partition("#")
            path = HTML / file
            if not path.exists():
                print(f"no such page: {path}", file=sys.stderr)
                rc = 1
                continue
            out = Path(out) if Path(out).is_absolute() else ROOT / out
            where = browser.shoot(path.as_uri(), out, anchor, select.strip())
            if shutil.which("pngquant"):
                subprocess.run(["pngquant", "--quality=70-95", "--speed=1", "--strip", "--force",
                                "--output", str(out), str(out)], check=False)
            print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
                  f"({out.stat().st_size // 1024} KB): {page} ({where})")
            if where.startswith("not found"):
                rc = 1
    finally:
        browser.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
