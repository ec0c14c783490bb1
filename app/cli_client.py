"""What every `nimbus` command shares: where the server is (flag, env, config file), the HTTP client that
turns API errors into one-line messages, and the plain-text output helpers (tables, JSON, times)."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

import typer

if TYPE_CHECKING:  # imported when a command first talks to a server: `nimbus serve` never does
    import httpx

DEFAULT_URL = "http://localhost:8080"
CONFIG_KEYS = ("url", "api_key")
# A sync invoke may run for the function's whole timeout (300 s at most); log follows hold 25 s.
_TIMEOUT_SEC, _CONNECT_TIMEOUT_SEC = 330.0, 10.0


class Output(StrEnum):
    table = "table"
    json = "json"


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: ...` to stderr and leave with `code` (1: the operation failed, 2: bad usage)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# --- the config file --------------------------------------------------------------------------------


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nimbus" / "config.toml"


def load_config(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
    return {key: str(data[key]) for key in CONFIG_KEYS if key in data}


def save_config(values: Mapping[str, str], path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON string escapes are valid TOML basic strings, so json.dumps quotes values safely.
    text = "".join(f"{key} = {json.dumps(values[key])}\n" for key in CONFIG_KEYS if key in values)
    # The file holds an API key: create it private rather than chmod after the fact.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return path


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str | None
    url_source: str  # "flag or env", "config file" or "default": `config show` explains where each came from
    key_source: str


def resolve_connection(url: str | None, api_key: str | None, file_values: Mapping[str, str]) -> Connection:
    """Flag/env (Typer has already merged those two) beat the config file, which beats the default."""
    if url:
        url_value, url_source = url, "flag or env"
    elif file_values.get("url"):
        url_value, url_source = file_values["url"], "config file"
    else:
        url_value, url_source = DEFAULT_URL, "default"
    if api_key:
        key_value, key_source = api_key, "flag or env"
    elif file_values.get("api_key"):
        key_value, key_source = file_values["api_key"], "config file"
    else:
        key_value, key_source = None, "not set"
    return Connection(url_value.rstrip("/"), key_value, url_source, key_source)


# --- HTTP ------------------------------------------------------------------------------------------


def format_api_error(status: int, payload: Any, text: str = "") -> str:
    """One line for an error response: the API's `{"error": {"message", "field"}}`, else the raw text."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        message = str(error["message"])
        return f"{message} ({error['field']})" if error.get("field") else message
    snippet = " ".join(text.split())[:200]
    return f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"


@dataclass
class NimbusClient:
    """A thin sync client over the REST API; every failure ends the command with a clear message."""

    connection: Connection
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            import httpx

            headers = {"User-Agent": "nimbus-cli", "X-Nimbus-Source": "cli"}
            if self.connection.api_key:
                headers["Authorization"] = f"Bearer {self.connection.api_key}"
            self._http = httpx.Client(
                base_url=self.connection.url,
                headers=headers,
                timeout=httpx.Timeout(_TIMEOUT_SEC, connect=_CONNECT_TIMEOUT_SEC),
            )
        return self._http

    def request(self, method: str, path: str, *, expect: Sequence[int] = (), **kwargs: Any) -> httpx.Response:
        """Send a request; statuses in `expect` (e.g. 404 for deploy's existence check) come back to the
        caller, any other 4xx/5xx ends the command with `error: <message> (<field>)`."""
        import httpx

        url = self.connection.url
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            fail(
                f"cannot connect to Nimbus at {url} ({exc}); is `nimbus serve` running there? "
                "Set the address with --url, NIMBUS_URL or `nimbus config set url ...`"
            )
        except httpx.TimeoutException:
            fail(f"Nimbus at {url} did not answer in time ({method} {path})")
        except httpx.HTTPError as exc:
            fail(f"request to {url} failed: {exc}")
        if response.status_code >= 400 and response.status_code not in expect:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            message = format_api_error(response.status_code, payload, response.text)
            if response.status_code == 401 and not self.connection.api_key:
                message += "; set a key with --api-key, NIMBUS_API_KEY or `nimbus config set api_key ...`"
            fail(message)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        response = self.request("POST", path, **kwargs)
        return response.json() if response.content else None

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def pages(self, path: str, params: dict[str, Any], *, follow: bool) -> Iterator[dict[str, Any]]:
        """The pages of a cursor-paginated list; with `follow`, every page until `next_cursor` is null."""
        params = {k: v for k, v in params.items() if v is not None}
        while True:
            page = self.get(path, params=params)
            yield page
            cursor = page.get("next_cursor")
            if not follow or not cursor:
                return
            params["cursor"] = cursor

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


@dataclass
class CliState:
    """The global options, kept on Typer's context object; the client is built on first use so `serve`
    and `config` never need a server."""

    url: str | None = None
    api_key: str | None = None
    output: Output = Output.table
    _client: NimbusClient | None = field(default=None, init=False, repr=False)

    def connection(self) -> Connection:
        return resolve_connection(self.url, self.api_key, load_config())

    @property
    def client(self) -> NimbusClient:
        if self._client is None:
            self._client = NimbusClient(self.connection())
        return self._client


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_object(CliState)
    return obj if obj is not None else CliState()


def path_part(value: str) -> str:
    """A name or id as one URL path segment: a typo holding '/' must not reach another route."""
    return quote(value, safe="")


# --- output ----------------------------------------------------------------------------------------


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces: greppable, and readable without a wide terminal."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    typer.echo(render_table(headers, rows) if rows else empty)


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        typer.echo(f"{label.ljust(width)}  {_cell(value)}")


def fmt_time(value: str | None) -> str:
    """ISO-8601 from the API → `YYYY-MM-DD HH:MM:SS` (UTC, as stored)."""
    return value[:19].replace("T", " ") if value else "-"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)
