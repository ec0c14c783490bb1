"""`make screenshots`: start a real Nimbus with some functions and traffic, then save PNGs of the main
pages to docs/screenshots/ with headless Chromium (the README shows them)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.browser.chrome import Page, chromium_paths, new_driver
from tests.server import Server

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "screenshots-password"

FUNCTIONS = {
    "hello": 'def handler(event, context):\n    return {"hello": event.get("name", "world")}\n',
    "resize-image": (
        "import time\n\n\ndef handler(event, context):\n"
        '    time.sleep(event.get("ms", 20) / 1000)\n'
        '    print("resized", event.get("file", "cat.png"))\n'
        '    return {"ok": True, "size": [320, 200]}\n'
    ),
    "charge-card": (
        "def handler(event, context):\n"
        '    if event.get("amount", 0) > 100:\n'
        '        raise ValueError("amount over the limit")\n'
        '    return {"charged": event.get("amount", 0)}\n'
    ),
}


def seed(server: Server) -> str:
    """Functions and a little traffic; returns the id of the function shown in detail."""
    with server.api() as api:
        ids = {}
        for name, code in FUNCTIONS.items():
            response = api.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": code})
            response.raise_for_status()
            ids[name] = response.json()["id"]
        for i in range(40):
            api.post("/api/v1/functions/hello/invoke", json={"name": f"user{i}"})
            api.post("/api/v1/functions/resize-image/invoke", json={"ms": 10 + i, "file": f"img{i}.png"})
            api.post("/api/v1/functions/charge-card/invoke", json={"amount": 40 + 7 * i})
        # Environments: hello runs v1 in staging and prod; a variable per environment.
        api.post("/api/v1/functions/hello/versions", json={}).raise_for_status()
        for env in ("staging", "prod"):
            api.put(f"/api/v1/functions/hello/environments/{env}", json={"version": 1}).raise_for_status()
            api.put(f"/api/v1/environments/{env}/variables", json={"env_vars": {"LOG_LEVEL": "info"}})
        api.post("/api/v1/layers", json={"name": "shared-utils", "compatible_runtimes": ["python"]})
        return ids["resize-image"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if chromium_paths() is None:
        print(
            "chromium and chromedriver are needed: apt-get install chromium chromium-driver", file=sys.stderr
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="nimbus-shots-") as tmp:
        server = Server(Path(tmp), PASSWORD)
        server.start()
        driver = new_driver(1440, 900)
        try:
            function_id = seed(server)
            page = Page(driver, server.url)
            shots = [("login", "/login", "Log in")]
            for name, path, text in shots:
                page.open(path)
                page.find_text(text)
                page.screenshot(args.out / f"{name}.png")
            page.log_in("admin", PASSWORD)
            for name, path, text in (
                ("dashboard", "/", "Dashboard"),
                ("functions", "/functions", "resize-image"),
                ("templates", "/functions/new", "Hello"),
                ("function-code", f"/functions/{function_id}", "resize-image"),
                ("function-test", f"/functions/{function_id}?tab=test", "Invoke"),
                ("invocations", "/invocations", "charge-card"),
                ("logs", "/logs", "resized"),
                ("wall", "/wall?board=overview&rotate=0", "Invocations"),
                ("environments", "/environments", "prod"),
                ("layers", "/layers", "shared-utils"),
                ("system", "/system", "Runtimes"),
            ):
                page.open(path)
                page.find_text(text, 15)
                if name == "function-test":  # show a result, not an empty pane
                    page.click_button("Invoke")
                    page.find_text("Output", 30)
                time.sleep(1.0)  # let charts and the editor finish drawing
                page.screenshot(args.out / f"{name}.png")
                print(f"wrote {args.out / f'{name}.png'}")
        finally:
            driver.quit()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
