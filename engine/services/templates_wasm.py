"""WebAssembly templates for the gallery (engine/services/templates.py): WASI command modules in WAT text.
Each reads the event JSON on stdin and writes its result JSON on stdout; stderr is its log. They share a
small prelude (reading stdin, writing stdout and stderr, finding a key's value in the event), written
out in every template so each is one complete file."""

from __future__ import annotations

from types import MappingProxyType

from engine.services.templates import SAMPLE_GREETING, SAMPLE_HTTP_REQUEST, SAMPLE_REJECTED_ORDER, Template

HEADER = """\
;; A Nimbus WASM function is a WASI command module: `_start` reads the event JSON on stdin and writes the
;; result JSON on stdout; whatever goes to stderr is the function's log. Exiting with a non-zero code, or
;; trapping, fails the invocation. Any language that targets wasm32-wasip1 works (Rust, Go, C, Zig ...);
;; upload the compiled module as `binary` (base64). This one is written by hand in WAT.
"""

PRELUDE = """
  ;; WASI preview1 is all a Nimbus WASM function can reach: no files, no network, its own variables only.
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Memory map (2 pages of 64 KiB):
  ;;   0..15          an iovec {buf, len} and a byte count, for the WASI calls
  ;;   16..999        constant strings, NUL-terminated (the data segments further down)
  ;;   1000..1015     digits of a number being written
  ;;   1024..32767    the event, as read from stdin
  ;;   32768..65535   free for the function
  ;;   65536..131071  the result, written to stdout at the end
  (memory (export "memory") 2)
  (global $in_len (mut i32) (i32.const 0))
  (global $out_len (mut i32) (i32.const 0))
  (global $str_len (mut i32) (i32.const 0))
  (global $num_end (mut i32) (i32.const 0))
  (global $num_ok (mut i32) (i32.const 0))

  ;; Read the whole event (stdin) to 1024.
  (func $read_event
    (loop $more
      (i32.store (i32.const 0) (i32.add (i32.const 1024) (global.get $in_len)))
      (i32.store (i32.const 4) (i32.sub (i32.const 31744) (global.get $in_len)))
      (if (i32.eqz (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (then
          (if (i32.load (i32.const 8))
            (then
              (global.set $in_len (i32.add (global.get $in_len) (i32.load (i32.const 8))))
              (br $more)))))))

  (func $in_end (result i32) (i32.add (i32.const 1024) (global.get $in_len)))

  ;; The length of the NUL-terminated string at $s.
  (func $strlen (param $s i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $s) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; Append $len bytes at $ptr to the result; $emitz appends a constant string, $emit_byte one byte.
  (func $emit (param $ptr i32) (param $len i32)
    (memory.copy (i32.add (i32.const 65536) (global.get $out_len)) (local.get $ptr) (local.get $len))
    (global.set $out_len (i32.add (global.get $out_len) (local.get $len))))
  (func $emitz (param $s i32) (call $emit (local.get $s) (call $strlen (local.get $s))))
  (func $emit_byte (param $c i32)
    (i32.store8 (i32.add (i32.const 65536) (global.get $out_len)) (local.get $c))
    (global.set $out_len (i32.add (global.get $out_len) (i32.const 1))))

  ;; Write $n in decimal at 1000..1015; returns where the digits start (they end at 1016).
  (func $itoa (param $n i32) (result i32)
    (local $p i32) (local $neg i32)
    (local.set $p (i32.const 1016))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (local.set $neg (i32.const 1)) (local.set $n (i32.sub (i32.const 0) (local.get $n)))))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (local.get $n)))
    (if (local.get $neg)
      (then
        (local.set $p (i32.sub (local.get $p) (i32.const 1)))
        (i32.store8 (local.get $p) (i32.const 45))))
    (local.get $p))
  (func $emit_int (param $n i32)
    (local $p i32)
    (local.set $p (call $itoa (local.get $n)))
    (call $emit (local.get $p) (i32.sub (i32.const 1016) (local.get $p))))

  ;; Write the result to stdout: the function's return value, as JSON.
  (func $flush
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (global.get $out_len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; Write to stderr: the function's log. $logz writes a constant string.
  (func $log (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $logz (param $s i32) (call $log (local.get $s) (call $strlen (local.get $s))))

  ;; Skip JSON whitespace (space, tab, newline, return: all bytes <= 32) from $p.
  (func $skip_ws (param $p i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (call $in_end)))
        (br_if $done (i32.gt_u (i32.load8_u (local.get $p)) (i32.const 32)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $p))

  ;; Where the value of a key starts in the event, or -1; $key is the quoted key, e.g. "\\"name\\"".
  ;; A plain search, enough for events shaped like the sample: a real function would use a JSON library.
  (func $find (param $key i32) (result i32)
    (local $i i32) (local $j i32) (local $len i32) (local $p i32)
    (local.set $len (call $strlen (local.get $key)))
    (local.set $i (i32.const 1024))
    (block $none
      (loop $scan
        (br_if $none (i32.gt_u (i32.add (local.get $i) (local.get $len)) (call $in_end)))
        (local.set $j (i32.const 0))
        (block $differ
          (loop $compare
            (if (i32.eq (local.get $j) (local.get $len))
              (then
                ;; the key matched; a ':' must follow, else it was a value spelled the same
                (local.set $p (call $skip_ws (i32.add (local.get $i) (local.get $len))))
                (br_if $differ (i32.ne (i32.load8_u (local.get $p)) (i32.const 58)))
                (return (call $skip_ws (i32.add (local.get $p) (i32.const 1))))))
            (br_if $differ
              (i32.ne (i32.load8_u (i32.add (local.get $i) (local.get $j)))
                      (i32.load8_u (i32.add (local.get $key) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $compare)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const -1))

  ;; The string value at $p (its opening quote): returns where its text starts and sets $str_len, or
  ;; returns -1 when there is no string at $p. Escapes are kept as they are (still valid inside JSON).
  (func $string_at (param $p i32) (result i32)
    (local $q i32)
    (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)) (then (return (i32.const -1))))
    (local.set $q (i32.add (local.get $p) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $q) (call $in_end)))
        (br_if $done (i32.eq (i32.load8_u (local.get $q)) (i32.const 34)))
        (if (i32.eq (i32.load8_u (local.get $q)) (i32.const 92))
          (then (local.set $q (i32.add (local.get $q) (i32.const 1)))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $next)))
    (global.set $str_len (i32.sub (local.get $q) (i32.add (local.get $p) (i32.const 1))))
    (i32.add (local.get $p) (i32.const 1)))

  ;; The integer at $p (an optional '-', then digits); sets $num_end just after it, and $num_ok to 0
  ;; when there was no digit.
  (func $int_at (param $p i32) (result i32)
    (local $n i32) (local $neg i32) (local $digit i32)
    (global.set $num_ok (i32.const 0))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 45))
      (then (local.set $neg (i32.const 1)) (local.set $p (i32.add (local.get $p) (i32.const 1)))))
    (block $done
      (loop $next
        (local.set $digit (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $digit) (i32.const 9)))
        (global.set $num_ok (i32.const 1))
        (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $digit)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (global.set $num_end (local.get $p))
    (select (i32.sub (i32.const 0) (local.get $n)) (local.get $n) (local.get $neg)))
"""

HELLO_WORLD = """
  ;; Constant strings.
  (data (i32.const 16) "\\"name\\"\\00")
  (data (i32.const 32) "World\\00")
  (data (i32.const 48) "saying hello to \\00")
  (data (i32.const 80) "\\n\\00")
  (data (i32.const 96) "{\\"message\\":\\"Hello, \\00")
  (data (i32.const 128) "!\\",\\"function\\":\\"\\00")
  (data (i32.const 160) "\\"}\\00")

  ;; Greet the `name` in the event: {"message": "Hello, <name>!", "function": "<this function>"}.
  (func $main (export "_start")
    (local $name i32) (local $len i32) (local $argv0 i32)
    (call $read_event)
    (local.set $name (call $string_at (call $find (i32.const 16))))
    (local.set $len (global.get $str_len))
    (if (i32.lt_s (local.get $name) (i32.const 0))
      (then (local.set $name (i32.const 32)) (local.set $len (i32.const 5))))
    ;; a line for the log
    (call $logz (i32.const 48))
    (call $log (local.get $name) (local.get $len))
    (call $logz (i32.const 80))
    ;; argv[0] is the function's name: args_get puts the argv pointers at 256 and their text at 272
    (drop (call $args_get (i32.const 256) (i32.const 272)))
    (local.set $argv0 (i32.load (i32.const 256)))
    (call $emitz (i32.const 96))
    (call $emit (local.get $name) (local.get $len))
    (call $emitz (i32.const 128))
    (call $emitz (local.get $argv0))
    (call $emitz (i32.const 160))
    (call $flush))
"""

JSON_TRANSFORM = """
  ;; Constant strings.
  (data (i32.const 16) "\\"numbers\\"\\00")
  (data (i32.const 32) "{\\"count\\":\\00")
  (data (i32.const 48) ",\\"sum\\":\\00")
  (data (i32.const 64) ",\\"min\\":\\00")
  (data (i32.const 80) ",\\"max\\":\\00")
  (data (i32.const 96) ",\\"doubled\\":[\\00")
  (data (i32.const 112) "]}\\00")
  (data (i32.const 128) "null\\00")
  (data (i32.const 144) "expected {\\"numbers\\": [integers, ...]} with at most 8192 numbers\\n\\00")
  (data (i32.const 224) "summarised \\00")
  (data (i32.const 240) " numbers\\n\\00")

  ;; A bad event: say why on stderr and exit with code 2 (the invocation fails with that message).
  (func $bad_event
    (call $logz (i32.const 144))
    (call $proc_exit (i32.const 2)))

  ;; {"numbers": [3, 1, 4]} -> {"count": 3, "sum": 8, "min": 1, "max": 4, "doubled": [6, 2, 8]}
  (func $main (export "_start")
    (local $p i32) (local $count i32) (local $i i32) (local $n i32)
    (local $sum i32) (local $min i32) (local $max i32)
    (call $read_event)
    (local.set $p (call $find (i32.const 16)))
    (if (i32.lt_s (local.get $p) (i32.const 0)) (then (call $bad_event)))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 91)) (then (call $bad_event)))
    (local.set $p (call $skip_ws (i32.add (local.get $p) (i32.const 1))))
    ;; the integers go to 32768.., four bytes each, until the closing ']'
    (block $end
      (loop $item
        (br_if $end (i32.eq (i32.load8_u (local.get $p)) (i32.const 93)))
        (if (i32.eq (local.get $count) (i32.const 8192)) (then (call $bad_event)))
        (local.set $n (call $int_at (local.get $p)))
        (if (i32.eqz (global.get $num_ok)) (then (call $bad_event)))
        (i32.store (i32.add (i32.const 32768) (i32.shl (local.get $count) (i32.const 2))) (local.get $n))
        (local.set $count (i32.add (local.get $count) (i32.const 1)))
        (local.set $p (call $skip_ws (global.get $num_end)))
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 44))
          (then
            (local.set $p (call $skip_ws (i32.add (local.get $p) (i32.const 1))))
            (br $item)))
        (br_if $end (i32.eq (i32.load8_u (local.get $p)) (i32.const 93)))
        (call $bad_event)))
    ;; sum, min, max
    (local.set $min (i32.load (i32.const 32768)))
    (local.set $max (local.get $min))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $n (i32.load (i32.add (i32.const 32768) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $sum (i32.add (local.get $sum) (local.get $n)))
        (if (i32.lt_s (local.get $n) (local.get $min)) (then (local.set $min (local.get $n))))
        (if (i32.gt_s (local.get $n) (local.get $max)) (then (local.set $max (local.get $n))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $logz (i32.const 224))
    (local.set $p (call $itoa (local.get $count)))
    (call $log (local.get $p) (i32.sub (i32.const 1016) (local.get $p)))
    (call $logz (i32.const 240))
    ;; the result
    (call $emitz (i32.const 32))
    (call $emit_int (local.get $count))
    (call $emitz (i32.const 48))
    (call $emit_int (local.get $sum))
    (call $emitz (i32.const 64))
    (if (local.get $count) (then (call $emit_int (local.get $min))) (else (call $emitz (i32.const 128))))
    (call $emitz (i32.const 80))
    (if (local.get $count) (then (call $emit_int (local.get $max))) (else (call $emitz (i32.const 128))))
    (call $emitz (i32.const 96))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (if (local.get $i) (then (call $emit_byte (i32.const 44))))
        (local.set $n (i32.load (i32.add (i32.const 32768) (i32.shl (local.get $i) (i32.const 2)))))
        (call $emit_int (i32.shl (local.get $n) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $emitz (i32.const 112))
    (call $flush))
"""

HTTP_HANDLER = """
  ;; Constant strings. Those of the body are JSON inside a JSON string, hence the escaped quotes.
  (data (i32.const 16) "\\"httpMethod\\"\\00")
  (data (i32.const 32) "\\"path\\"\\00")
  (data (i32.const 48) "\\"name\\"\\00")
  (data (i32.const 64) "GET\\00")
  (data (i32.const 80) "/hello\\00")
  (data (i32.const 96) "World\\00")
  (data (i32.const 112) "{\\"statusCode\\":\\00")
  (data (i32.const 144) ",\\"headers\\":{\\"Content-Type\\":\\"application/json\\"},\\"body\\":\\"\\00")
  (data (i32.const 208) "{\\\\\\"message\\\\\\":\\\\\\"Hello, \\00")
  (data (i32.const 240) "!\\\\\\"}\\"}\\00")
  (data (i32.const 256) "{\\\\\\"error\\\\\\":\\\\\\"no route for \\00")
  (data (i32.const 288) "\\\\\\"}\\"}\\00")
  (data (i32.const 304) " \\00")
  (data (i32.const 320) "\\n\\00")
  (data (i32.const 336) "/\\00")

  ;; Is the text at $ptr ($len bytes) the constant string $z?
  (func $equals (param $ptr i32) (param $len i32) (param $z i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $len) (call $strlen (local.get $z))) (then (return (i32.const 0))))
    (block $differ
      (loop $next
        (if (i32.eq (local.get $i) (local.get $len)) (then (return (i32.const 1))))
        (br_if $differ
          (i32.ne (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                  (i32.load8_u (i32.add (local.get $z) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; Append text that goes inside the body string: quotes and backslashes get a backslash.
  (func $emit_escaped (param $ptr i32) (param $len i32)
    (local $i i32) (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (if (i32.or (i32.eq (local.get $c) (i32.const 34)) (i32.eq (local.get $c) (i32.const 92)))
          (then (call $emit_byte (i32.const 92))))
        (call $emit_byte (local.get $c))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

  ;; An HTTP-style event in ({httpMethod, path, queryStringParameters ...}), {statusCode, headers, body}
  ;; out. GET /hello answers 200 with a greeting; anything else 404.
  (func $main (export "_start")
    (local $method i32) (local $mlen i32) (local $path i32) (local $plen i32)
    (local $name i32) (local $nlen i32)
    (call $read_event)
    (local.set $method (call $string_at (call $find (i32.const 16))))
    (local.set $mlen (global.get $str_len))
    (if (i32.lt_s (local.get $method) (i32.const 0))
      (then (local.set $method (i32.const 64)) (local.set $mlen (i32.const 3))))
    (local.set $path (call $string_at (call $find (i32.const 32))))
    (local.set $plen (global.get $str_len))
    (if (i32.lt_s (local.get $path) (i32.const 0))
      (then (local.set $path (i32.const 336)) (local.set $plen (i32.const 1))))
    ;; log the request line
    (call $log (local.get $method) (local.get $mlen))
    (call $logz (i32.const 304))
    (call $log (local.get $path) (local.get $plen))
    (call $logz (i32.const 320))
    (call $emitz (i32.const 112))
    (if (i32.and (call $equals (local.get $method) (local.get $mlen) (i32.const 64))
                 (call $equals (local.get $path) (local.get $plen) (i32.const 80)))
      (then
        (local.set $name (call $string_at (call $find (i32.const 48))))
        (local.set $nlen (global.get $str_len))
        (if (i32.lt_s (local.get $name) (i32.const 0))
          (then (local.set $name (i32.const 96)) (local.set $nlen (i32.const 5))))
        (call $emit_int (i32.const 200))
        (call $emitz (i32.const 144))
        (call $emitz (i32.const 208))
        (call $emit_escaped (local.get $name) (local.get $nlen))
        (call $emitz (i32.const 240)))
      (else
        (call $emit_int (i32.const 404))
        (call $emitz (i32.const 144))
        (call $emitz (i32.const 256))
        (call $emit_escaped (local.get $method) (local.get $mlen))
        (call $emitz (i32.const 304))
        (call $emit_escaped (local.get $path) (local.get $plen))
        (call $emitz (i32.const 288))))
    (call $flush))
"""

ERROR_EXAMPLE = """
  ;; Constant strings.
  (data (i32.const 16) "\\"order_id\\"\\00")
  (data (i32.const 32) "\\"items\\"\\00")
  (data (i32.const 48) "validating order \\00")
  (data (i32.const 80) "\\n\\00")
  (data (i32.const 96) "order \\00")
  (data (i32.const 112) " has no items\\n\\00")
  (data (i32.const 128) "{\\"ok\\":true,\\"order_id\\":\\00")
  (data (i32.const 160) "}\\00")
  (data (i32.const 176) "null\\00")

  ;; Give up on an order: the reason goes to stderr, and exit code 1 fails the invocation (type
  ;; NonZeroExit, the reason as its message, the wasm backtrace as its stack). A trap fails it too, with
  ;; the trap's name as the type: e.g. `unreachable`, which is how a Rust panic ends.
  (func $reject (param $id i32) (param $len i32)
    (call $logz (i32.const 96))
    (call $log (local.get $id) (local.get $len))
    (call $logz (i32.const 112))
    (call $proc_exit (i32.const 1)))

  ;; An order needs at least one item.
  (func $check (param $id i32) (param $len i32)
    (local $p i32)
    (local.set $p (call $find (i32.const 32)))
    (if (i32.lt_s (local.get $p) (i32.const 0))
      (then (call $reject (local.get $id) (local.get $len))))
    ;; "items": [] is empty when the first non-space byte after '[' is ']'
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 91))
      (then
        (if (i32.eq (i32.load8_u (call $skip_ws (i32.add (local.get $p) (i32.const 1)))) (i32.const 93))
          (then (call $reject (local.get $id) (local.get $len)))))))

  ;; Fails on purpose for an order without items, to show how an error, its stack and the logs look.
  (func $main (export "_start")
    (local $id i32) (local $len i32)
    (call $read_event)
    ;; the order id as written in the event (a number), or null
    (local.set $id (call $find (i32.const 16)))
    (if (i32.lt_s (local.get $id) (i32.const 0))
      (then (local.set $id (i32.const 176)) (local.set $len (i32.const 4)))
      (else
        (drop (call $int_at (local.get $id)))
        (local.set $len (i32.sub (global.get $num_end) (local.get $id)))))
    (call $logz (i32.const 48))
    (call $log (local.get $id) (local.get $len))
    (call $logz (i32.const 80))
    (call $check (local.get $id) (local.get $len))
    (call $emitz (i32.const 128))
    (call $emit (local.get $id) (local.get $len))
    (call $emitz (i32.const 160))
    (call $flush))
"""


def _module(title: str, body: str) -> str:
    return f";; {title}\n{HEADER}(module{PRELUDE}{body})\n"


TEMPLATES: tuple[Template, ...] = (
    Template(
        id="wasm-hello-world",
        title="Hello world",
        description="Greets the name in the event: a WASI command module reading stdin, writing stdout.",
        runtime="wasm",
        handler="_start",
        files=MappingProxyType({"module.wat": _module("Hello world", HELLO_WORLD)}),
        sample_event=SAMPLE_GREETING,
    ),
    Template(
        id="wasm-json-transform",
        title="JSON transform",
        description="Summarises a list of integers: count, sum, min, max, and each one doubled.",
        runtime="wasm",
        handler="_start",
        files=MappingProxyType({"module.wat": _module("JSON transform", JSON_TRANSFORM)}),
        sample_event={"numbers": [3, 1, 4, 1, 5, 9, 2, 6]},
        category="data-processing",
    ),
    Template(
        id="wasm-http-handler",
        title="HTTP request handler",
        description="Routes an HTTP-style event and answers {statusCode, headers, body}, Lambda style.",
        runtime="wasm",
        handler="_start",
        files=MappingProxyType({"module.wat": _module("HTTP request handler", HTTP_HANDLER)}),
        sample_event=SAMPLE_HTTP_REQUEST,
        category="web-api",
    ),
    Template(
        id="wasm-error-example",
        title="Error example",
        description="Exits with code 1 for an order without items, to show an error, its stack and logs.",
        runtime="wasm",
        handler="_start",
        files=MappingProxyType({"module.wat": _module("Error example", ERROR_EXAMPLE)}),
        sample_event=SAMPLE_REJECTED_ORDER,
        category="errors",
    ),
)
