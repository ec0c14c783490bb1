"""Go templates for the gallery (engine/services/templates.py): files of `package main` with
`func Handler(ctx context.Context, event json.RawMessage) (any, error)`; Nimbus generates the `main` that
calls it (engine/builds/wrappers/nimbus_main.go), and `NimbusContextFrom(ctx)` describes the invocation."""

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
package main

import (
	"context"
	"encoding/json"
	"fmt"
)

// Handler greets the name in the event: the smallest complete function. Nimbus writes the main that
// calls it; NimbusContextFrom(ctx) has the request id, function name, memory limit and deadline.
func Handler(ctx context.Context, event json.RawMessage) (any, error) {
	var in struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(event, &in) // any event will do: the name is optional
	if in.Name == "" {
		in.Name = "World"
	}
	fmt.Println("saying hello to", in.Name)
	invocation := NimbusContextFrom(ctx)
	return map[string]any{
		"message":    fmt.Sprintf("Hello, %s!", in.Name),
		"function":   invocation.FunctionName,
		"request_id": invocation.RequestID,
	}, nil
}
"""

JSON_TRANSFORM = """\
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

type orderItem struct {
	SKU      string  `json:"sku"`
	Name     string  `json:"name"`
	Price    float64 `json:"price"`
	Quantity *int    `json:"quantity"`
}

type order struct {
	OrderID  any         `json:"order_id"`
	Customer string      `json:"customer"`
	Items    []orderItem `json:"items"`
}

type line struct {
	SKU       string  `json:"sku"`
	Name      string  `json:"name"`
	Quantity  int     `json:"quantity"`
	LineTotal float64 `json:"line_total"`
}

func cents(x float64) float64 { return math.Round(x*100) / 100 }

func titleCase(s string) string {
	words := strings.Fields(strings.ToLower(s))
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// Handler normalises an order: clean item names, compute line totals and a summary.
func Handler(ctx context.Context, event json.RawMessage) (any, error) {
	var in order
	if err := json.Unmarshal(event, &in); err != nil {
		return nil, fmt.Errorf("the event is not an order: %w", err)
	}
	lines, count, total := []line{}, 0, 0.0
	for _, raw := range in.Items {
		quantity := 1
		if raw.Quantity != nil {
			quantity = *raw.Quantity
		}
		l := line{
			SKU:       strings.ToUpper(raw.SKU),
			Name:      titleCase(raw.Name),
			Quantity:  quantity,
			LineTotal: cents(float64(quantity) * cents(raw.Price)),
		}
		lines, count, total = append(lines, l), count+quantity, total+l.LineTotal
	}
	fmt.Printf("transformed %d items\\n", len(lines))
	return map[string]any{
		"order_id":   in.OrderID,
		"customer":   strings.ToLower(strings.TrimSpace(in.Customer)),
		"items":      lines,
		"item_count": count,
		"total":      cents(total),
	}, nil
}
"""

HTTP_HANDLER = """\
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

type request struct {
	HTTPMethod string            `json:"httpMethod"`
	Path       string            `json:"path"`
	Query      map[string]string `json:"queryStringParameters"`
	Body       string            `json:"body"`
}

type response struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func respond(status int, body any) response {
	text, _ := json.Marshal(body)
	return response{status, map[string]string{"Content-Type": "application/json"}, string(text)}
}

// Handler routes an HTTP-style request: a Lambda proxy-integration event in, {statusCode, headers,
// body} out.
func Handler(ctx context.Context, event json.RawMessage) (any, error) {
	var req request
	if err := json.Unmarshal(event, &req); err != nil {
		return respond(400, map[string]string{"error": "the event is not an HTTP request"}), nil
	}
	method := strings.ToUpper(req.HTTPMethod)
	if method == "" {
		method = "GET"
	}
	switch {
	case method == "GET" && req.Path == "/hello":
		name := req.Query["name"]
		if name == "" {
			name = "World"
		}
		return respond(200, map[string]string{"message": fmt.Sprintf("Hello, %s!", name)}), nil
	case method == "POST" && req.Path == "/echo":
		var payload any
		if err := json.Unmarshal([]byte(req.Body), &payload); err != nil {
			return respond(400, map[string]string{"error": "body is not JSON: " + err.Error()}), nil
		}
		return respond(200, map[string]any{
			"received":   payload,
			"request_id": NimbusContextFrom(ctx).RequestID,
		}), nil
	}
	return respond(404, map[string]string{"error": fmt.Sprintf("no route for %s %s", method, req.Path)}), nil
}
"""

ERROR_EXAMPLE = """\
package main

import (
	"context"
	"encoding/json"
	"fmt"
)

// OrderRejected is a business error: its type name and message are what the caller sees. (A panic is
// reported too: as type "panic", with the stack of the goroutine that panicked.)
type OrderRejected struct {
	OrderID any
}

func (e *OrderRejected) Error() string { return fmt.Sprintf("order %v has no items", e.OrderID) }

type order struct {
	OrderID any   `json:"order_id"`
	Items   []any `json:"items"`
}

func check(o order) error {
	if len(o.Items) == 0 {
		return &OrderRejected{OrderID: o.OrderID}
	}
	return nil
}

// Handler fails on purpose, to show how an error and the logs look.
func Handler(ctx context.Context, event json.RawMessage) (any, error) {
	var in order
	if err := json.Unmarshal(event, &in); err != nil {
		return nil, err
	}
	fmt.Println("validating order", in.OrderID)
	if err := check(in); err != nil {
		return nil, err
	}
	return map[string]bool{"ok": true}, nil
}
"""

TEMPLATES: tuple[Template, ...] = (
    Template(
        id="go-hello-world",
        title="Hello world",
        description="Greets the name in the event; a Handler Nimbus wraps and builds on deploy.",
        runtime="go",
        handler="Handler",
        files=MappingProxyType({"main.go": HELLO_WORLD}),
        sample_event=SAMPLE_GREETING,
    ),
    Template(
        id="go-json-transform",
        title="JSON transform",
        description="Decodes an order into structs, computes line totals and a summary.",
        runtime="go",
        handler="Handler",
        files=MappingProxyType({"main.go": JSON_TRANSFORM}),
        sample_event=SAMPLE_ORDER,
        category="data-processing",
    ),
    Template(
        id="go-http-handler",
        title="HTTP request handler",
        description="Routes an HTTP-style event and answers {statusCode, headers, body}, Lambda style.",
        runtime="go",
        handler="Handler",
        files=MappingProxyType({"main.go": HTTP_HANDLER}),
        sample_event=SAMPLE_HTTP_REQUEST,
        category="web-api",
    ),
    Template(
        id="go-error-example",
        title="Error example",
        description="Returns a typed business error on purpose, to show an error and its logs.",
        runtime="go",
        handler="Handler",
        files=MappingProxyType({"main.go": ERROR_EXAMPLE}),
        sample_event=SAMPLE_REJECTED_ORDER,
        category="errors",
    ),
)
