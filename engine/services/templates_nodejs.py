"""Node.js templates for the gallery (engine/services/templates.py): CommonJS handlers with
`(event, context)`, the shape Lambda users know."""

from __future__ import annotations

from types import MappingProxyType

from engine.services.templates import (
    SAMPLE_GREETING,
    SAMPLE_HTTP_REQUEST,
    SAMPLE_ORDER,
    SAMPLE_REJECTED_ORDER,
    Template,
)

HELLO_WORLD = """\
// Greets the name in the event: the smallest complete function.
exports.handler = async (event, context) => {
  const name = (event && event.name) || 'World';
  console.log(`saying hello to ${name}`);
  return {
    message: `Hello, ${name}!`,
    function: context.functionName,
    request_id: context.requestId,
  };
};
"""

JSON_TRANSFORM = """\
// Normalises an order: clean item names, compute line totals and a summary.
const titleCase = (s) => String(s).trim().toLowerCase().replace(/\\b\\w/g, (c) => c.toUpperCase());
const cents = (n) => Math.round(n * 100) / 100;

exports.handler = async (event, context) => {
  const items = (event.items || []).map((raw) => {
    const quantity = Number.parseInt(raw.quantity ?? 1, 10);
    const price = cents(Number(raw.price));
    return {
      sku: String(raw.sku || '').toUpperCase(),
      name: titleCase(raw.name || ''),
      quantity,
      line_total: cents(quantity * price),
    };
  });
  context.logger.info(`transformed ${items.length} items`);
  return {
    order_id: event.order_id ?? null,
    customer: String(event.customer || '').trim().toLowerCase(),
    items,
    item_count: items.reduce((n, i) => n + i.quantity, 0),
    total: cents(items.reduce((sum, i) => sum + i.line_total, 0)),
  };
};
"""

HTTP_HANDLER = """\
// An HTTP-style request handler: a Lambda proxy-integration event in, {statusCode, headers, body} out.
const respond = (statusCode, body) => ({
  statusCode,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(body),
});

exports.handler = async (event, context) => {
  const method = (event.httpMethod || 'GET').toUpperCase();
  const path = event.path || '/';
  const query = event.queryStringParameters || {};
  if (method === 'GET' && path === '/hello') {
    return respond(200, { message: `Hello, ${query.name || 'World'}!` });
  }
  if (method === 'POST' && path === '/echo') {
    let payload;
    try {
      payload = JSON.parse(event.body || '{}');
    } catch (err) {
      return respond(400, { error: `body is not JSON: ${err.message}` });
    }
    return respond(200, { received: payload, request_id: context.requestId });
  }
  return respond(404, { error: `no route for ${method} ${path}` });
};
"""

ERROR_EXAMPLE = """\
// Fails on purpose, to show how an error, its stack and the logs look.
class OrderRejected extends Error {
  constructor(message) {
    super(message);
    this.name = 'OrderRejected';
  }
}

function check(order) {
  if (!order.items || order.items.length === 0) {
    throw new OrderRejected(`order ${order.order_id} has no items`);
  }
  return order;
}

exports.handler = async (event) => {
  console.log('validating order', event.order_id);
  check(event);
  return { ok: true };
};
"""

TEMPLATES: tuple[Template, ...] = (
    Template(
        id="nodejs-hello-world",
        title="Hello world",
        description="Greets the name in the event; an async CommonJS handler.",
        runtime="nodejs",
        handler="index.handler",
        files=MappingProxyType({"index.js": HELLO_WORLD}),
        sample_event=SAMPLE_GREETING,
    ),
    Template(
        id="nodejs-json-transform",
        title="JSON transform",
        description="Cleans up an order and computes line totals and a summary.",
        runtime="nodejs",
        handler="index.handler",
        files=MappingProxyType({"index.js": JSON_TRANSFORM}),
        sample_event=SAMPLE_ORDER,
        category="data-processing",
    ),
    Template(
        id="nodejs-http-handler",
        title="HTTP request handler",
        description="Routes an HTTP-style event and answers {statusCode, headers, body}, Lambda style.",
        runtime="nodejs",
        handler="index.handler",
        files=MappingProxyType({"index.js": HTTP_HANDLER}),
        sample_event=SAMPLE_HTTP_REQUEST,
        category="web-api",
    ),
    Template(
        id="nodejs-error-example",
        title="Error example",
        description="Throws a business error on purpose, to show an error, its stack and logs.",
        runtime="nodejs",
        handler="index.handler",
        files=MappingProxyType({"index.js": ERROR_EXAMPLE}),
        sample_event=SAMPLE_REJECTED_ORDER,
        category="errors",
    ),
)
