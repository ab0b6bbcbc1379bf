"""The analyst page in a real browser: time to first render of the at-risk list, and a
screenshot of every page.

Serves the model under gunicorn on loopback (2 workers), logs in with a read key in Debian's
Chromium (Playwright, headless), and times the at-risk page from navigation until its first row
is drawn. ``--scale 10`` first copies the model's customers ten times under new ids (24,690 for
The Complete Journey: the 10x data of the scale issue), since the list's cost grows with them.

    python benchmarks/pages.py [--model models:/loyalty-offers@champion] [--scale 10] [--screenshots docs/images]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from recsys import constants as C

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def scaled_bundle(model: str, scale: int, dest: Path) -> Path:
    """The model's bundle with its customers (and their history) copied ``scale`` times."""
    from registry.loader import load_bundle

    bundle = load_bundle(model).bundle
    if scale > 1:
        base = bundle.customers
        numeric = pd.api.types.is_integer_dtype(base.index.dtype)

        def copy_of(ids, i):  # copy i of the ids: new integers, or the text with a suffix
            return ids + i * 10**9 if numeric else ids.astype(str) + ("" if i == 0 else f"-{i}")

        bundle.customers = pd.concat([base.set_axis(copy_of(base.index, i)) for i in range(scale)])
        if bundle.history is not None:
            h = bundle.history
            copies = [h.assign(**{C.CUSTOMER_ID: copy_of(h[C.CUSTOMER_ID], i)}) for i in range(scale)]
            bundle.history = pd.concat(copies, ignore_index=True)
    return bundle.save(dest)


def serve(bundle: Path, tmp: Path) -> tuple[subprocess.Popen, str, str]:
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != str(Path(__file__).resolve().parent)]
    from serving.auth import KeyStore
    from serving.probe import wait_http

    key = KeyStore(tmp / "keys.json").create("read", "pages benchmark")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "RECSYS_MODEL_URI": str(bundle),
        "RECSYS_API_KEYS_FILE": str(tmp / "keys.json"),
        "RECSYS_EVENTS_URL": f"sqlite:///{tmp / 'events.db'}",
        "RECSYS_BIND": f"127.0.0.1:{port}",
        "RECSYS_WORKERS": "2",
        "RECSYS_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", str(ROOT / "serving" / "gunicorn.conf.py"), "serving:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/readyz", proc, timeout=180)
    return proc, f"http://127.0.0.1:{port}", key


def measure(base: str, key: str, repeat: int, shots: Path | None) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/app/login")
        page.fill("#key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("#at-risk")
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            page.goto(f"{base}/app/at-risk?min_risk=0", wait_until="commit")
            page.wait_for_selector("#at-risk tbody tr")
            times.append(time.perf_counter() - t)
        total = page.inner_text("#summary").split(" customers")[0]
        print(
            f"at-risk page ({total} customers match), navigation to first row: median "
            f"{statistics.median(times) * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms over {repeat} loads"
        )
        if shots is not None:
            screenshots(page, base, shots)
        browser.close()


def screenshots(page, base: str, shots: Path) -> None:
    shots.mkdir(parents=True, exist_ok=True)
    first = page.get_attribute("#at-risk tbody tr", "data-customer")
    pages = {
        "at-risk": "/app/at-risk",
        "customer": f"/app/customers/{first}",
        "segments": "/app/segments",
        "lift": "/app/lift",
        "model": "/app/model",
    }
    for name, path in pages.items():
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots / f"page-{name}.png"), full_page=name != "at-risk")
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(base + "/app/at-risk")
    page.screenshot(path=str(shots / "page-at-risk-narrow.png"), full_page=False)
    print(f"screenshots: {', '.join(sorted(p.name for p in shots.glob('page-*.png')))} in {shots}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=C.CHAMPION_URI)
    parser.add_argument("--scale", type=int, default=1, help="copies of the customers")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for a PNG of every page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        bundle = scaled_bundle(args.model, args.scale, tmp / "bundle")
        print(f"bundle with {args.scale}x customers written in {time.perf_counter() - t:.1f} s")
        proc, base, key = serve(bundle, tmp)
        try:
            measure(base, key, args.repeat, args.screenshots)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
