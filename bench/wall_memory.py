"""Wall-display memory over time: a real `nimbus serve`, a headless Chromium on /wall with fast rotation
and live updates, a steady load of invocations through the REST API, and every --sample seconds the
page's JS heap after a forced GC (CDP Performance.getMetrics), its DOM node and listener counts, and
the server's RSS. Prints the series, the growth, and one JSON line.

    .venv/bin/python bench/wall_memory.py [--minutes 10] [--sample 30] [--rate 20] [--rotate 5]

Needs Debian's chromium and chromedriver (/usr/bin/chromium, /usr/bin/chromedriver); without them it
says so and exits 0."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "wall-bench-password"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
HELLO = 'def handler(event, context):\n    return {"hello": event.get("n")}\n'
BREAKER = "def handler(event, context):\n    raise ValueError('the wall should show this')\n"


def chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    return (browser, driver) if browser and driver else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server -----------------------------------------------------------------------------------


class Server:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key_file = data_dir / "bootstrap.key"
        self.log_path = data_dir / "server.log"
        env = {
            **os.environ,
            "NIMBUS_ADMIN_PASSWORD": PASSWORD,
            "NIMBUS_PORT": str(self.port),
            "NIMBUS_DATA_DIR": str(data_dir),
            "NIMBUS_BOOTSTRAP_KEY_FILE": str(self.key_file),
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited:\n" + self.log_path.read_text(errors="replace"))
            try:
                if (
                    httpx.get(self.url + "/health/ready", timeout=1).status_code == 200
                    and self.key_file.exists()
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def api(self) -> httpx.Client:
        key = self.key_file.read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Load(threading.Thread):
    """Invocations at `rate` per second: mostly successes, 5 % failures, and now and then an async
    failure that lands in the DLQ."""

    def __init__(self, server: Server, rate: float) -> None:
        super().__init__(daemon=True)
        self.server, self.interval = server, 1.0 / rate
        self.stopped = threading.Event()
        self.sent = self.failed_requests = 0

    def run(self) -> None:
        with self.server.api() as api:
            next_at = time.monotonic()
            while not self.stopped.is_set():
                n = self.sent
                try:
                    if n % 200 == 199:
                        api.post("/api/v1/functions/breaker/async", json={"n": n})
                    elif n % 20 == 19:
                        api.post("/api/v1/functions/breaker/invoke", json={"n": n})
                    else:
                        api.post("/api/v1/functions/hello/invoke", json={"n": n})
                except httpx.HTTPError:
                    self.failed_requests += 1
                self.sent += 1
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stopped.wait(delay)
                else:
                    next_at = time.monotonic()


# --- the browser ----------------------------------------------------------------------------------


def new_driver(paths: tuple[str, str], profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1920,1080")
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.set_page_load_timeout(30)
    return driver


def wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # selenium raises many kinds while a page loads
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def log_in(driver: Any, url: str, then: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/login?next={then.replace('?', '%3F').replace('&', '%26')}")
    wait(lambda: driver.find_element(By.CSS_SELECTOR, "input[aria-label='Username']"), 20, "the log-in form")
    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Username']").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Password']").send_keys(PASSWORD)
    driver.find_element(By.XPATH, "//button[contains(., 'Log in')]").click()
    wait(lambda: "/login" not in driver.current_url, 20, "the page after log-in")


def sample(driver: Any) -> dict[str, Any]:
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    nodes = driver.execute_script("return document.getElementsByTagName('*').length")
    text = driver.execute_script("return document.body.innerText")
    shown = re.search(r"invocations \(1 h\)\s*\n\s*([\d,]+)", text, re.IGNORECASE)
    title = re.search(r"Nimbus\s*\n\s*([^\n]+)", text)
    return {
        "heap_mb": metrics.get("JSHeapUsedSize", 0) / 1e6,
        "heap_total_mb": metrics.get("JSHeapTotalSize", 0) / 1e6,
        "dom_nodes": int(nodes),
        "cdp_nodes": int(metrics.get("Nodes", 0)),
        "listeners": int(metrics.get("JSEventListeners", 0)),
        "shown_invocations": shown.group(1) if shown else "?",
        "board": title.group(1).strip() if title else "?",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=20.0, help="invocations per second")
    parser.add_argument("--rotate", type=float, default=5.0, help="wall rotation, seconds")
    parser.add_argument("--path", default="", help="page to watch instead of /wall?rotate=<rotate>")
    args = parser.parse_args()
    paths = chromium()
    if paths is None:
        print(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver): skipped"
        )
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="nimbus-wall-bench-"))
    server = Server(tmp / "data")
    driver = None
    load = Load(server, args.rate)
    try:
        with server.api() as api:
            for name, code, extra in (("hello", HELLO, {}), ("breaker", BREAKER, {"retry_attempts": 1})):
                response = api.post(
                    "/api/v1/functions", json={"name": name, "runtime": "python", "code": code, **extra}
                )
                response.raise_for_status()
        load.start()
        driver = new_driver(paths, tmp / "chromium")
        driver.execute_cdp_cmd("Performance.enable", {})
        log_in(driver, server.url, args.path or f"/wall?rotate={args.rotate:g}")
        time.sleep(5)  # let the first updates land before the baseline
        samples: list[dict[str, Any]] = []
        start = time.monotonic()
        print(
            f"{'t (s)':>6} {'heap MB':>8} {'total MB':>9} {'DOM':>6} {'listeners':>9} {'server MB':>9} "
            f"{'invocations':>11}  board / shown 'Invocations (1 h)'"
        )
        while True:
            elapsed = time.monotonic() - start
            row = {"t": round(elapsed), **sample(driver), "server_rss_mb": server.rss_mb(), "sent": load.sent}
            samples.append(row)
            print(
                f"{row['t']:>6} {row['heap_mb']:>8.2f} {row['heap_total_mb']:>9.2f} {row['dom_nodes']:>6} "
                f"{row['listeners']:>9} {row['server_rss_mb']:>9.1f} {row['sent']:>11}  "
                f"{row['board']} / {row['shown_invocations']}",
                flush=True,
            )
            if elapsed >= args.minutes * 60:
                break
            time.sleep(max(0.0, args.sample - (time.monotonic() - start - elapsed)))
    finally:
        load.stopped.set()
        if driver is not None:
            driver.quit()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    first, last = samples[0], samples[-1]
    figures = {
        "minutes": round((last["t"] - first["t"]) / 60, 2),
        "invocations_sent": last["sent"],
        "heap_first_mb": round(first["heap_mb"], 3),
        "heap_last_mb": round(last["heap_mb"], 3),
        "heap_max_mb": round(max(s["heap_mb"] for s in samples), 3),
        "heap_growth_mb": round(last["heap_mb"] - first["heap_mb"], 3),
        "dom_first": first["dom_nodes"],
        "dom_last": last["dom_nodes"],
        "listeners_first": first["listeners"],
        "listeners_last": last["listeners"],
        "server_rss_first_mb": round(first["server_rss_mb"], 1),
        "server_rss_last_mb": round(last["server_rss_mb"], 1),
        "failed_requests": load.failed_requests,
    }
    print()
    print(
        f"JS heap {figures['heap_first_mb']} -> {figures['heap_last_mb']} MB "
        f"(growth {figures['heap_growth_mb']:+} MB, max {figures['heap_max_mb']} MB); "
        f"DOM nodes {figures['dom_first']} -> {figures['dom_last']}; "
        f"listeners {figures['listeners_first']} -> {figures['listeners_last']}; "
        f"server RSS {figures['server_rss_first_mb']} -> {figures['server_rss_last_mb']} MB"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
