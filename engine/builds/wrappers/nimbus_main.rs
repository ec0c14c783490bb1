// ---- Nimbus wrapper (fixed text, std only; builds with rustc 1.63+, edition 2021) -----------------
//
// Speaks the Nimbus worker protocol on fd 3: frames of a 4-byte big-endian length plus a JSON object.
// Calls the handler bound above as `nimbus_handler` once per invocation with the event's raw JSON
// text and a `Context`; its Ok text must be JSON. Panics are caught and reported with their location.
// Output written to stdout/stderr is the invocation's log. `crate::json` parses and writes JSON.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::io::FromRawFd;
use std::panic;
use std::time::{Duration, Instant};

const NIMBUS_MAX_FRAME: usize = 6 * 1024 * 1024;

/// What a handler learns about its invocation.
#[allow(dead_code)]
pub struct Context {
    pub request_id: String,
    pub function_name: String,
    pub function_version: String,
    pub memory_limit_mb: u64,
    /// api | console | cron | webhook | workflow | retry | cli
    pub source: String,
    pub trace_id: String,
    pub attempt: u32,
    pub deadline: Instant,
}

#[allow(dead_code)]
impl Context {
    /// How long the invocation may still run.
    pub fn remaining_time(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn remaining_time_ms(&self) -> u64 {
        self.remaining_time().as_millis() as u64
    }
}

/// JSON for handlers without crates: `json::parse(text)` gives a `Json` value to look into; build an
/// answer with `Json::obj`/`num`/`int`/`text` (it prints as compact JSON text) or `json::quote(s)`.
#[allow(dead_code)]
pub mod json {
    use std::fmt;

    #[derive(Clone, Debug, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        /// The number's text exactly as written (no precision is lost).
        Number(String),
        String(String),
        Array(Vec<Json>),
        /// Members in their order of appearance.
        Object(Vec<(String, Json)>),
    }

    impl Json {
        /// A number (NaN and the infinities have no JSON form: they become null).
        pub fn num(value: f64) -> Json {
            if value.is_finite() {
                Json::Number(format!("{}", value))
            } else {
                Json::Null
            }
        }

        pub fn int(value: i64) -> Json {
            Json::Number(value.to_string())
        }

        pub fn text(value: &str) -> Json {
            Json::String(value.to_string())
        }

        /// An object from (key, value) pairs, in that order.
        pub fn obj(members: Vec<(&str, Json)>) -> Json {
            Json::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        }

        /// The member `key` of an object.
        pub fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        pub fn at(&self, index: usize) -> Option<&Json> {
            self.as_array().and_then(|items| items.get(index))
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Json::String(s) => Some(s),
                _ => None,
            }
        }

        pub fn as_f64(&self) -> Option<f64> {
            match self {
                Json::Number(n) => n.parse().ok(),
                _ => None,
            }
        }

        pub fn as_i64(&self) -> Option<i64> {
            match self {
                Json::Number(n) => n
                    .parse()
                    .ok()
                    .or_else(|| n.parse::<f64>().ok().map(|f| f as i64)),
                _ => None,
            }
        }

        pub fn as_bool(&self) -> Option<bool> {
            match self {
                Json::Bool(b) => Some(*b),
                _ => None,
            }
        }

        pub fn as_array(&self) -> Option<&[Json]> {
            match self {
                Json::Array(items) => Some(items),
                _ => None,
            }
        }

        pub fn as_object(&self) -> Option<&[(String, Json)]> {
            match self {
                Json::Object(members) => Some(members),
                _ => None,
            }
        }

        pub fn is_null(&self) -> bool {
            matches!(self, Json::Null)
        }
    }

    impl fmt::Display for Json {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Json::Null => f.write_str("null"),
                Json::Bool(b) => write!(f, "{}", b),
                Json::Number(n) => f.write_str(n),
                Json::String(s) => f.write_str(&quote(s)),
                Json::Array(items) => {
                    f.write_str("[")?;
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{}", item)?;
                    }
                    f.write_str("]")
                }
                Json::Object(members) => {
                    f.write_str("{")?;
                    for (i, (key, value)) in members.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{}:{}", quote(key), value)?;
                    }
                    f.write_str("}")
                }
            }
        }
    }

    /// `s` as a JSON string literal, quotes included.
    pub fn quote(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// Parse one JSON value (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            b: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        p.ws();
        let value = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(p.fail("unexpected text after the value"));
        }
        Ok(value)
    }

    /// Whether `text` is exactly one JSON value; the error says what is wrong and where.
    pub fn validate(text: &str) -> Result<(), String> {
        parse(text).map(|_| ())
    }

    /// The members of a JSON object as (key, byte range of the raw value text).
    pub fn members(text: &str) -> Result<Vec<(String, (usize, usize))>, String> {
        let mut p = Parser {
            b: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        let mut out = Vec::new();
        p.ws();
        p.expect(b'{')?;
        p.ws();
        if p.peek() == Some(b'}') {
            return Ok(out);
        }
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            let start = p.i;
            p.value()?;
            out.push((key, (start, p.i)));
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => return Ok(out),
                _ => return Err(p.fail("expected ',' or '}'")),
            }
        }
    }

    const MAX_DEPTH: usize = 512;

    struct Parser<'a> {
        b: &'a [u8],
        i: usize,
        depth: usize,
    }

    impl<'a> Parser<'a> {
        fn fail(&self, what: &str) -> String {
            format!("{} at byte {}", what, self.i)
        }

        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        fn next(&mut self) -> Option<u8> {
            let c = self.peek();
            if c.is_some() {
                self.i += 1;
            }
            c
        }

        fn expect(&mut self, c: u8) -> Result<(), String> {
            if self.peek() == Some(c) {
                self.i += 1;
                Ok(())
            } else {
                Err(self.fail(&format!("expected '{}'", c as char)))
            }
        }

        fn ws(&mut self) {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
                self.i += 1;
            }
        }

        fn value(&mut self) -> Result<Json, String> {
            match self.peek() {
                Some(b'{') => self.nested(true),
                Some(b'[') => self.nested(false),
                Some(b'"') => self.string().map(Json::String),
                Some(b't') => self.word("true", Json::Bool(true)),
                Some(b'f') => self.word("false", Json::Bool(false)),
                Some(b'n') => self.word("null", Json::Null),
                Some(b'-' | b'0'..=b'9') => self.number(),
                Some(_) => Err(self.fail("unexpected character")),
                None => Err(self.fail("unexpected end of text")),
            }
        }

        fn word(&mut self, word: &str, value: Json) -> Result<Json, String> {
            if self.b[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                Ok(value)
            } else {
                Err(self.fail("unexpected character"))
            }
        }

        fn digits(&mut self) -> usize {
            let start = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            self.i - start
        }

        fn number(&mut self) -> Result<Json, String> {
            let start = self.i;
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            match self.peek() {
                Some(b'0') => self.i += 1,
                Some(b'1'..=b'9') => {
                    self.digits();
                }
                _ => return Err(self.fail("expected a digit")),
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
                if self.digits() == 0 {
                    return Err(self.fail("expected a digit after '.'"));
                }
            }
            if let Some(b'e' | b'E') = self.peek() {
                self.i += 1;
                if let Some(b'+' | b'-') = self.peek() {
                    self.i += 1;
                }
                if self.digits() == 0 {
                    return Err(self.fail("expected a digit in the exponent"));
                }
            }
            let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("0");
            Ok(Json::Number(text.to_string()))
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let mut value = 0u32;
            for _ in 0..4 {
                let digit = match self.next() {
                    Some(c @ b'0'..=b'9') => c - b'0',
                    Some(c @ b'a'..=b'f') => c - b'a' + 10,
                    Some(c @ b'A'..=b'F') => c - b'A' + 10,
                    _ => return Err(self.fail("bad \\u escape")),
                };
                value = value * 16 + digit as u32;
            }
            Ok(value)
        }

        fn string(&mut self) -> Result<String, String> {
            self.expect(b'"')?;
            let mut out = String::new();
            let mut run = self.i; // start of the current unescaped run
            loop {
                match self.peek() {
                    None => return Err(self.fail("unterminated string")),
                    Some(b'"') => {
                        out.push_str(std::str::from_utf8(&self.b[run..self.i]).unwrap_or(""));
                        self.i += 1;
                        return Ok(out);
                    }
                    Some(b'\\') => {
                        out.push_str(std::str::from_utf8(&self.b[run..self.i]).unwrap_or(""));
                        self.i += 1;
                        let c = match self.next() {
                            Some(b'"') => '"',
                            Some(b'\\') => '\\',
                            Some(b'/') => '/',
                            Some(b'b') => '\u{08}',
                            Some(b'f') => '\u{0c}',
                            Some(b'n') => '\n',
                            Some(b'r') => '\r',
                            Some(b't') => '\t',
                            Some(b'u') => {
                                let mut code = self.hex4()?;
                                if (0xD800..0xDC00).contains(&code) {
                                    if self.b[self.i..].starts_with(b"\\u") {
                                        self.i += 2;
                                        let low = self.hex4()?;
                                        if !(0xDC00..0xE000).contains(&low) {
                                            return Err(self.fail("bad surrogate pair"));
                                        }
                                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                                    } else {
                                        return Err(self.fail("lone surrogate"));
                                    }
                                }
                                match char::from_u32(code) {
                                    Some(c) => c,
                                    None => return Err(self.fail("bad \\u escape")),
                                }
                            }
                            _ => return Err(self.fail("bad escape")),
                        };
                        out.push(c);
                        run = self.i;
                    }
                    Some(c) if c < 0x20 => return Err(self.fail("control character in string")),
                    Some(_) => self.i += 1,
                }
            }
        }

        fn nested(&mut self, object: bool) -> Result<Json, String> {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(self.fail("nested too deeply"));
            }
            self.i += 1;
            let close = if object { b'}' } else { b']' };
            let mut items = Vec::new();
            let mut members = Vec::new();
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
            } else {
                loop {
                    self.ws();
                    if object {
                        let key = self.string()?;
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                        members.push((key, self.value()?));
                    } else {
                        items.push(self.value()?);
                    }
                    self.ws();
                    match self.next() {
                        Some(b',') => continue,
                        Some(c) if c == close => break,
                        _ => {
                            self.i = self.i.saturating_sub(1);
                            let expected = if object {
                                "expected ',' or '}'"
                            } else {
                                "expected ',' or ']'"
                            };
                            return Err(self.fail(expected));
                        }
                    }
                }
            }
            self.depth -= 1;
            Ok(if object {
                Json::Object(members)
            } else {
                Json::Array(items)
            })
        }
    }
}

// -- the protocol ----------------------------------------------------------------------------------

thread_local! {
    static NIMBUS_PANIC: RefCell<Option<(String, String)>> = RefCell::new(None);
}

mod nimbus_sys {
    use std::os::raw::{c_int, c_long};

    #[repr(C)]
    pub struct Rusage {
        pub utime: [c_long; 2],
        pub stime: [c_long; 2],
        pub maxrss: c_long,
        pub rest: [c_long; 13],
    }

    extern "C" {
        pub fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
        pub fn getrusage(who: c_int, usage: *mut Rusage) -> c_int;
    }
}

/// The system allocator, saying so on the log when an allocation fails under the memory limit (the
/// process then aborts, and Nimbus reports MemoryLimitExceeded).
struct NimbusAlloc;

fn nimbus_checked(ptr: *mut u8) -> *mut u8 {
    if ptr.is_null() {
        let note =
            b"nimbus: out of memory: an allocation failed under the function's memory limit\n";
        unsafe {
            nimbus_sys::write(2, note.as_ptr(), note.len());
        }
    }
    ptr
}

unsafe impl GlobalAlloc for NimbusAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        nimbus_checked(System.alloc(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        nimbus_checked(System.alloc_zeroed(layout))
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        nimbus_checked(System.realloc(ptr, layout, new_size))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static NIMBUS_ALLOC: NimbusAlloc = NimbusAlloc;

/// The peak resident memory of this program: VmHWM, which starts afresh at exec (the rusage maximum
/// would still count the process this worker was forked as).
fn nimbus_peak_kb() -> i64 {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("VmHWM:") {
                if let Ok(kb) = rest.trim().trim_end_matches("kB").trim().parse::<i64>() {
                    return kb;
                }
            }
        }
    }
    let mut usage = nimbus_sys::Rusage {
        utime: [0; 2],
        stime: [0; 2],
        maxrss: 0,
        rest: [0; 13],
    };
    if unsafe { nimbus_sys::getrusage(0, &mut usage) } != 0 {
        return 0;
    }
    usage.maxrss as i64
}

fn nimbus_read(conn: &mut File) -> Option<String> {
    let mut head = [0u8; 4];
    conn.read_exact(&mut head).ok()?;
    let size = u32::from_be_bytes(head) as usize;
    if size > NIMBUS_MAX_FRAME {
        return None;
    }
    let mut body = vec![0u8; size];
    conn.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

fn nimbus_send(conn: &mut File, body: &str) {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body.as_bytes());
    if conn.write_all(&out).is_err() {
        std::process::exit(0);
    }
}

fn nimbus_error(kind: &str, message: &str, stack: &str) -> String {
    format!(
        "{{\"type\":{},\"message\":{},\"stack\":{}}}",
        json::quote(kind),
        json::quote(message),
        json::quote(stack)
    )
}

fn nimbus_text(value: Option<&json::Json>) -> String {
    value.and_then(|v| v.as_str()).unwrap_or("").to_string()
}

fn nimbus_install_panic_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        // The handler runs on the main thread: its panics become the invocation's error. Panics of
        // threads it started are printed to the log as usual.
        if std::thread::current().name() != Some("main") {
            default(info);
            return;
        }
        let payload = info.payload();
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_string()
        };
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        NIMBUS_PANIC.with(|p| *p.borrow_mut() = Some((message, location)));
    }));
}

fn nimbus_invoke(event: &str, ctx: &Context) -> String {
    let started = Instant::now();
    NIMBUS_PANIC.with(|p| *p.borrow_mut() = None);
    let outcome = panic::catch_unwind(panic::AssertUnwindSafe(|| nimbus_handler(event, ctx)));
    let _ = std::io::stdout().flush();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (ok, body) = match outcome {
        Ok(Ok(text)) => match json::validate(&text) {
            Ok(()) if text.len() > NIMBUS_MAX_FRAME - 1024 => {
                let message = format!(
                    "result is {} bytes; the limit is {} bytes",
                    text.len(),
                    NIMBUS_MAX_FRAME
                );
                (false, nimbus_error("ResultTooLarge", &message, ""))
            }
            Ok(()) => (true, text.trim().to_string()),
            Err(why) => {
                let message = format!("handler returned text that is not JSON: {}", why);
                (false, nimbus_error("InvalidResult", &message, ""))
            }
        },
        Ok(Err(message)) => (false, nimbus_error("Error", &message, "")),
        Err(_) => {
            let (message, location) = NIMBUS_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| ("panic".to_string(), String::new()));
            (
                false,
                nimbus_error("panic", &message, &format!("panicked at {}", location)),
            )
        }
    };
    format!(
        "{{\"t\":\"result\",\"ok\":{},\"{}\":{},\"duration_ms\":{:.3},\"peak_memory_kb\":{},\"fatal\":false}}",
        ok,
        if ok { "result" } else { "error" },
        body,
        duration_ms,
        nimbus_peak_kb()
    )
}

fn main() {
    let started = Instant::now();
    nimbus_install_panic_hook();
    let mut conn = unsafe { File::from_raw_fd(3) };
    let init = match nimbus_read(&mut conn).map(|body| json::parse(&body)) {
        Some(Ok(frame)) => frame,
        _ => return,
    };
    if init.get("t").and_then(|t| t.as_str()) != Some("init") {
        return;
    }
    if let Some(env) = init.get("env").and_then(|e| e.as_object()) {
        for (key, value) in env {
            if let Some(value) = value.as_str() {
                std::env::set_var(key, value);
            }
        }
    }
    let function_name = nimbus_text(init.get("function_name"));
    let function_version = nimbus_text(init.get("function_version"));
    let memory_limit_mb = init
        .get("memory_mb")
        .and_then(|m| m.as_i64())
        .unwrap_or(0)
        .max(0) as u64;
    let ready = format!(
        "{{\"t\":\"ready\",\"init_ms\":{:.3}}}",
        started.elapsed().as_secs_f64() * 1000.0
    );
    nimbus_send(&mut conn, &ready);
    while let Some(body) = nimbus_read(&mut conn) {
        let members = match json::members(&body) {
            Ok(members) => members,
            Err(_) => return,
        };
        let raw = |key: &str| {
            members
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, (start, end))| &body[*start..*end])
        };
        let kind = raw("t").and_then(|text| json::parse(text).ok());
        if kind.as_ref().and_then(|t| t.as_str()) != Some("invoke") {
            return;
        }
        let ctx_in = raw("ctx")
            .and_then(|text| json::parse(text).ok())
            .unwrap_or(json::Json::Null);
        let timeout = ctx_in
            .get("timeout_sec")
            .and_then(|t| t.as_f64())
            .unwrap_or(30.0)
            .max(0.0)
            .min(1e6);
        let ctx = Context {
            request_id: nimbus_text(ctx_in.get("request_id")),
            function_name: function_name.clone(),
            function_version: function_version.clone(),
            memory_limit_mb,
            source: nimbus_text(ctx_in.get("source")),
            trace_id: nimbus_text(ctx_in.get("trace_id")),
            attempt: ctx_in
                .get("attempt")
                .and_then(|a| a.as_i64())
                .unwrap_or(1)
                .max(0) as u32,
            deadline: Instant::now() + Duration::from_secs_f64(timeout),
        };
        let reply = nimbus_invoke(raw("event").unwrap_or("null"), &ctx);
        nimbus_send(&mut conn, &reply);
    }
}
