"""The template gallery: starter functions as data (code, handler, limits and a sample event), one tuple per
runtime (Python's here, the others' in templates_<runtime>.py); the gallery only offers templates whose
runtime is available on this node."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from engine.errors import NotFound
from engine.services.function_schemas import FunctionCreate


@dataclass(frozen=True, slots=True)
class Template:
    id: str  # stable, used in URLs and markers: "python-hello-world"
    title: str
    description: str
    runtime: str
    handler: str
    files: Mapping[str, str]
    sample_event: Any  # what the Test tab starts with; invoking with it succeeds (or, for errors, fails)
    category: str = "starter"  # starter | data-processing | web-api | scheduled | errors
    memory_mb: int = 128
    timeout_sec: int = 30
    tags: tuple[str, ...] = field(default_factory=tuple)

    def request(
        self,
        name: str,
        *,
        description: str | None = None,
        memory_mb: int | None = None,
        timeout_sec: int | None = None,
        tags: list[str] | None = None,
    ) -> FunctionCreate:
        """A create request for a function named `name` from this template; raises pydantic's
        ValidationError for bad input, like any FunctionCreate."""
        return FunctionCreate(
            name=name,
            runtime=self.runtime,
            handler=self.handler,
            files=dict(self.files),
            description=self.description if description is None else description,
            memory_mb=self.memory_mb if memory_mb is None else memory_mb,
            timeout_sec=self.timeout_sec if timeout_sec is None else timeout_sec,
            tags=list(self.tags) if tags is None else tags,
        )


# The sample events that every runtime's templates of one kind share: the same input, the same result.
SAMPLE_GREETING: dict[str, Any] = {"name": "Nimbus"}
SAMPLE_ORDER: dict[str, Any] = {
    "order_id": 1001,
    "customer": "  Ada@Example.com ",
    "items": [
        {"sku": "ab-1", "name": " blue mug ", "price": 7.5, "quantity": 2},
        {"sku": "cd-2", "name": "TEAPOT", "price": 24.0},
    ],
}
SAMPLE_HTTP_REQUEST: dict[str, Any] = {
    "httpMethod": "GET",
    "path": "/hello",
    "headers": {"Accept": "application/json"},
    "queryStringParameters": {"name": "Nimbus"},
    "body": None,
}
SAMPLE_REJECTED_ORDER: dict[str, Any] = {"order_id": 42, "items": []}


HELLO_WORLD = '''\
def handler(event, context):
    """Say hello to the `name` in the event."""
    name = event.get("name", "World") if isinstance(event, dict) else "World"
    print(f"saying hello to {name}")
    return {
        "message": f"Hello, {name}!",
        "function": context.function_name,
        "request_id": context.request_id,
    }
'''

JSON_TRANSFORM = '''\
def handler(event, context):
    """Normalise an order: clean item names, compute line totals and a summary."""
    items = []
    for raw in event.get("items", []):
        quantity = int(raw.get("quantity", 1))
        price = round(float(raw["price"]), 2)
        items.append(
            {
                "sku": str(raw.get("sku", "")).upper(),
                "name": str(raw.get("name", "")).strip().title(),
                "quantity": quantity,
                "line_total": round(quantity * price, 2),
            }
        )
    context.logger.info("transformed %d items", len(items))
    return {
        "order_id": event.get("order_id"),
        "customer": str(event.get("customer", "")).strip().lower(),
        "items": items,
        "item_count": sum(i["quantity"] for i in items),
        "total": round(sum(i["line_total"] for i in items), 2),
    }
'''

HTTP_HANDLER = '''\
import json


def respond(status, body):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def handler(event, context):
    """An HTTP-style request handler: a Lambda proxy-integration event in, {statusCode, headers, body} out."""
    method = event.get("httpMethod", "GET").upper()
    path = event.get("path", "/")
    query = event.get("queryStringParameters") or {}
    if method == "GET" and path == "/hello":
        return respond(200, {"message": f"Hello, {query.get('name', 'World')}!"})
    if method == "POST" and path == "/echo":
        try:
            payload = json.loads(event.get("body") or "{}")
        except json.JSONDecodeError as exc:
            return respond(400, {"error": f"body is not JSON: {exc.msg}"})
        return respond(200, {"received": payload, "request_id": context.request_id})
    return respond(404, {"error": f"no route for {method} {path}"})
'''

SCHEDULED_JOB = '''\
import time


def handler(event, context):
    """A periodic clean-up job: runs in batches and stops early when the deadline gets close."""
    started = time.time()
    retention_days = int(event.get("retention_days", 30))
    batches = int(event.get("batches", 3))
    removed = 0
    for batch in range(batches):
        if context.get_remaining_time_in_millis() < 1000:
            context.logger.warning("stopping early: little time left")
            break
        removed += 10  # stand-in for deleting records older than retention_days
        context.logger.info("batch %d: removed 10 records older than %d days", batch + 1, retention_days)
    return {
        "job": "cleanup",
        "triggered_by": context.source,
        "removed": removed,
        "seconds": round(time.time() - started, 3),
    }
'''

ERROR_EXAMPLE = '''\
class OrderRejected(Exception):
    """A business error: its name and message are what the caller sees."""


def check(order):
    if not order.get("items"):
        raise OrderRejected(f"order {order.get('order_id')} has no items")
    return order


def handler(event, context):
    """Fails on purpose, to show how an error, its stack and the logs look."""
    print("validating order", event.get("order_id"))
    check(event)
    return {"ok": True}
'''

PYTHON: tuple[Template, ...] = (
    Template(
        id="python-hello-world",
        title="Hello world",
        description="Greets the name in the event; the smallest complete function.",
        runtime="python",
        handler="main.handler",
        files=MappingProxyType({"main.py": HELLO_WORLD}),
        sample_event=SAMPLE_GREETING,
    ),
    Template(
        id="python-json-transform",
        title="JSON transform",
        description="Reshapes an order: cleans fields, computes line totals and a summary.",
        runtime="python",
        handler="main.handler",
        files=MappingProxyType({"main.py": JSON_TRANSFORM}),
        sample_event=SAMPLE_ORDER,
        category="data-processing",
    ),
    Template(
        id="python-http-handler",
        title="HTTP request handler",
        description="Routes an HTTP-style event and answers {statusCode, headers, body}, Lambda style.",
        runtime="python",
        handler="main.handler",
        files=MappingProxyType({"main.py": HTTP_HANDLER}),
        sample_event=SAMPLE_HTTP_REQUEST,
        category="web-api",
    ),
    Template(
        id="python-scheduled-job",
        title="Scheduled job",
        description="A clean-up job for a cron schedule: batches, logging, and a deadline check.",
        runtime="python",
        handler="main.handler",
        files=MappingProxyType({"main.py": SCHEDULED_JOB}),
        sample_event={"retention_days": 30, "batches": 3},
        category="scheduled",
        timeout_sec=60,
    ),
    Template(
        id="python-error-example",
        title="Error example",
        description="Raises a business error on purpose, to show an error, its stack and logs.",
        runtime="python",
        handler="main.handler",
        files=MappingProxyType({"main.py": ERROR_EXAMPLE}),
        sample_event=SAMPLE_REJECTED_ORDER,
        category="errors",
    ),
)


def builtin_templates() -> tuple[Template, ...]:
    """Every runtime's templates, in gallery order; each runtime keeps its own in templates_<runtime>.py."""
    from engine.services import templates_go, templates_nodejs, templates_rust, templates_wasm

    groups = (PYTHON, templates_nodejs.TEMPLATES, templates_go.TEMPLATES, templates_rust.TEMPLATES)
    return tuple(t for group in (*groups, templates_wasm.TEMPLATES) for t in group)


class TemplateGallery:
    """The templates this node offers. Read-only data: any principal may read it."""

    def __init__(
        self,
        templates: Iterable[Template] = (),
        *,
        available_runtimes: Callable[[], set[str]] | None = None,
    ) -> None:
        self._templates: dict[str, Template] = {}
        self._available = available_runtimes
        self.register(*templates)

    def register(self, *templates: Template) -> None:
        for template in templates:
            if template.id in self._templates:
                raise ValueError(f"template {template.id!r} is registered twice")
            self._templates[template.id] = template

    def list(self, runtime: str | None = None) -> list[Template]:
        """Templates in gallery order, only for runtimes available here (and `runtime`, when given)."""
        available = self._available() if self._available is not None else None
        return [
            t
            for t in self._templates.values()
            if (runtime is None or t.runtime == runtime) and (available is None or t.runtime in available)
        ]

    def get(self, template_id: str) -> Template:
        template = self._templates.get(template_id)
        if template is None:
            raise NotFound(f"template not found: {template_id}")
        return template


def builtin_gallery(available_runtimes: Callable[[], set[str]] | None = None) -> TemplateGallery:
    return TemplateGallery(builtin_templates(), available_runtimes=available_runtimes)
