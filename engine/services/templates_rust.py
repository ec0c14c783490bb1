"""Rust templates for the gallery (engine/services/templates.py): `pub fn handler(event: &str, ctx:
&Context) -> Result<String, String>` in lib.rs, std only. Nimbus generates the crate root around it
(engine/builds/wrappers/nimbus_main.rs), which also brings `crate::Context` and `crate::json` (parse
the event, build the JSON answer).

Crates (builds never reach crates.io): on a machine with registry access run `cargo vendor` in a project
that depends on them, zip its `vendor/` folder (the zip holds vendor/<crate>/...), upload the zip as a
layer for rust, attach the layer to the function, then add a `Cargo.toml` to the function's files whose
`[dependencies]` name the crates. Nimbus writes the rest of the manifest and builds with
`cargo build --release --offline` over the attached layers' vendored crates (engine/builds/crates.py).
The hello-world template's code says the same."""

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
use crate::json::{self, Json};
use crate::Context;

/// Greets the name in the event: the smallest complete function. The event arrives as JSON text and
/// the answer leaves as JSON text; `crate::json` (from Nimbus's wrapper) reads and writes it.
///
/// Crates: std only, unless a layer vendors them. Run `cargo vendor` where crates.io is reachable, zip
/// the vendor/ folder, upload it as a layer for rust, attach it to this function, then add a Cargo.toml
/// whose [dependencies] name the crates (Nimbus writes the rest and builds with cargo --offline).
pub fn handler(event: &str, ctx: &Context) -> Result<String, String> {
    let event = json::parse(event)?;
    let name = event.get("name").and_then(Json::as_str).unwrap_or("World");
    println!("saying hello to {}", name);
    let answer = Json::obj(vec![
        ("message", Json::text(&format!("Hello, {}!", name))),
        ("function", Json::text(&ctx.function_name)),
        ("request_id", Json::text(&ctx.request_id)),
    ]);
    Ok(answer.to_string())
}
"""

JSON_TRANSFORM = """\
use crate::json::{self, Json};
use crate::Context;

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn title_case(s: &str) -> String {
    let words: Vec<String> = s
        .split_whitespace()
        .map(|word| {
            let lower = word.to_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect();
    words.join(" ")
}

fn text<'a>(value: &'a Json, key: &str) -> &'a str {
    value.get(key).and_then(Json::as_str).unwrap_or("")
}

/// Normalises an order: clean item names, compute line totals and a summary.
pub fn handler(event: &str, _ctx: &Context) -> Result<String, String> {
    let order = json::parse(event)?;
    let (mut items, mut count, mut total) = (Vec::new(), 0, 0.0);
    for raw in order.get("items").and_then(Json::as_array).unwrap_or(&[]) {
        let quantity = raw.get("quantity").and_then(Json::as_i64).unwrap_or(1);
        let price = raw.get("price").and_then(Json::as_f64);
        let price = price.ok_or_else(|| "an item has no price".to_string())?;
        let line_total = cents(quantity as f64 * cents(price));
        count += quantity;
        total += line_total;
        items.push(Json::obj(vec![
            ("sku", Json::text(&text(raw, "sku").to_uppercase())),
            ("name", Json::text(&title_case(text(raw, "name")))),
            ("quantity", Json::int(quantity)),
            ("line_total", Json::num(line_total)),
        ]));
    }
    println!("transformed {} items", items.len());
    let answer = Json::obj(vec![
        (
            "order_id",
            order.get("order_id").cloned().unwrap_or(Json::Null),
        ),
        (
            "customer",
            Json::text(&text(&order, "customer").trim().to_lowercase()),
        ),
        ("items", Json::Array(items)),
        ("item_count", Json::int(count)),
        ("total", Json::num(cents(total))),
    ]);
    Ok(answer.to_string())
}
"""

HTTP_HANDLER = """\
use crate::json::{self, Json};
use crate::Context;

fn respond(status: i64, body: Json) -> String {
    let headers = Json::obj(vec![("Content-Type", Json::text("application/json"))]);
    let response = Json::obj(vec![
        ("statusCode", Json::int(status)),
        ("headers", headers),
        ("body", Json::text(&body.to_string())),
    ]);
    response.to_string()
}

fn error(message: &str) -> Json {
    Json::obj(vec![("error", Json::text(message))])
}

/// Routes an HTTP-style request: a Lambda proxy-integration event in, {statusCode, headers, body} out.
pub fn handler(event: &str, ctx: &Context) -> Result<String, String> {
    let request = json::parse(event)?;
    let method = request
        .get("httpMethod")
        .and_then(Json::as_str)
        .unwrap_or("GET")
        .to_uppercase();
    let path = request.get("path").and_then(Json::as_str).unwrap_or("/");
    if method == "GET" && path == "/hello" {
        let query = request.get("queryStringParameters");
        let name = query
            .and_then(|q| q.get("name"))
            .and_then(Json::as_str)
            .unwrap_or("World");
        let body = Json::obj(vec![("message", Json::text(&format!("Hello, {}!", name)))]);
        return Ok(respond(200, body));
    }
    if method == "POST" && path == "/echo" {
        let body = request.get("body").and_then(Json::as_str).unwrap_or("{}");
        return Ok(match json::parse(body) {
            Ok(payload) => respond(
                200,
                Json::obj(vec![
                    ("received", payload),
                    ("request_id", Json::text(&ctx.request_id)),
                ]),
            ),
            Err(why) => respond(400, error(&format!("body is not JSON: {}", why))),
        });
    }
    Ok(respond(
        404,
        error(&format!("no route for {} {}", method, path)),
    ))
}
"""

ERROR_EXAMPLE = """\
use crate::json::{self, Json};
use crate::Context;

fn check(order: &Json) -> Result<(), String> {
    let items = order.get("items").and_then(Json::as_array).unwrap_or(&[]);
    if items.is_empty() {
        let id = order
            .get("order_id")
            .map(|id| id.to_string())
            .unwrap_or_default();
        return Err(format!("order {} has no items", id));
    }
    Ok(())
}

/// Fails on purpose, to show how an error and the logs look. An `Err` is the invocation's error (type
/// "Error"); a panic is caught too and reported as type "panic" with the file and line it came from.
pub fn handler(event: &str, _ctx: &Context) -> Result<String, String> {
    let order = json::parse(event)?;
    println!(
        "validating order {}",
        order
            .get("order_id")
            .map(|id| id.to_string())
            .unwrap_or_default()
    );
    check(&order)?;
    Ok(Json::obj(vec![("ok", Json::Bool(true))]).to_string())
}
"""

TEMPLATES: tuple[Template, ...] = (
    Template(
        id="rust-hello-world",
        title="Hello world",
        description="Greets the name in the event; std only, built with rustc on deploy.",
        runtime="rust",
        handler="handler",
        files=MappingProxyType({"lib.rs": HELLO_WORLD}),
        sample_event=SAMPLE_GREETING,
    ),
    Template(
        id="rust-json-transform",
        title="JSON transform",
        description="Reads an order with crate::json, computes line totals and a summary.",
        runtime="rust",
        handler="handler",
        files=MappingProxyType({"lib.rs": JSON_TRANSFORM}),
        sample_event=SAMPLE_ORDER,
        category="data-processing",
    ),
    Template(
        id="rust-http-handler",
        title="HTTP request handler",
        description="Routes an HTTP-style event and answers {statusCode, headers, body}, Lambda style.",
        runtime="rust",
        handler="handler",
        files=MappingProxyType({"lib.rs": HTTP_HANDLER}),
        sample_event=SAMPLE_HTTP_REQUEST,
        category="web-api",
    ),
    Template(
        id="rust-error-example",
        title="Error example",
        description="Returns an Err on purpose, to show an error and its logs.",
        runtime="rust",
        handler="handler",
        files=MappingProxyType({"lib.rs": ERROR_EXAMPLE}),
        sample_event=SAMPLE_REJECTED_ORDER,
        category="errors",
    ),
)
