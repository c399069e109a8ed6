//! Strict HAR 1.2 checker: required fields, their JSON types and the timing rules.
//!
//! The reader is lenient so foreign files load; this is the opposite, for the tests of
//! the traces modscope writes (built with the `testkit` feature only). It works on raw JSON so it sees exactly
//! what is in the file, not what serde defaults would fill in.

use serde_json::{Map, Value};

/// Absolute tolerance (ms) when checking `time` against the sum of timings.
const TIME_TOLERANCE_MS: f64 = 0.01;

/// Every violation found, as `json.path: what is wrong`; empty when the document is a
/// valid HAR 1.2 log.
pub fn validate_har_1_2(doc: &Value) -> Vec<String> {
    let mut c = Checker::default();
    let Some(root) = c.object(doc, "$") else {
        return c.errors;
    };
    let Some(log) = c.field_object(root, "$", "log") else {
        return c.errors;
    };
    if let Some(v) = c.field_str(log, "log", "version") {
        if v != "1.2" && v != "1.1" {
            c.err("log.version", format!("expected \"1.2\", found {v:?}"));
        }
    }
    if let Some(creator) = c.field_object(log, "log", "creator") {
        c.field_str(creator, "log.creator", "name");
        c.field_str(creator, "log.creator", "version");
    }
    if let Some(browser) = c.opt_object(log, "log", "browser") {
        c.field_str(browser, "log.browser", "name");
        c.field_str(browser, "log.browser", "version");
    }
    if let Some(entries) = c.field_array(log, "log", "entries") {
        for (i, e) in entries.iter().enumerate() {
            c.entry(e, &format!("log.entries[{i}]"));
        }
    }
    c.errors
}

#[derive(Default)]
struct Checker {
    errors: Vec<String>,
}

impl Checker {
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        self.errors.push(format!("{path}: {}", msg.into()));
    }

    fn object<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(o) => Some(o),
            other => {
                self.err(path, format!("expected object, found {}", kind(other)));
                None
            }
        }
    }

    fn get<'a>(&mut self, o: &'a Map<String, Value>, path: &str, key: &str) -> Option<&'a Value> {
        let v = o.get(key);
        if v.is_none() {
            self.err(&join(path, key), "required field is missing");
        }
        v
    }

    fn field_object<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'a Map<String, Value>> {
        let v = self.get(o, path, key)?;
        self.object(v, &join(path, key))
    }

    fn opt_object<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'a Map<String, Value>> {
        let v = o.get(key)?;
        self.object(v, &join(path, key))
    }

    fn field_array<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'a Vec<Value>> {
        match self.get(o, path, key)? {
            Value::Array(a) => Some(a),
            other => {
                self.err(
                    &join(path, key),
                    format!("expected array, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn field_str<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'a str> {
        match self.get(o, path, key)? {
            Value::String(s) => Some(s),
            other => {
                self.err(
                    &join(path, key),
                    format!("expected string, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn opt_str(&mut self, o: &Map<String, Value>, path: &str, key: &str) {
        match o.get(key) {
            None | Some(Value::String(_)) => {}
            Some(other) => self.err(
                &join(path, key),
                format!("expected string, found {}", kind(other)),
            ),
        }
    }

    fn field_num(&mut self, o: &Map<String, Value>, path: &str, key: &str) -> Option<f64> {
        match self.get(o, path, key)? {
            Value::Number(n) => n.as_f64(),
            other => {
                self.err(
                    &join(path, key),
                    format!("expected number, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Integer fields where `-1` means unknown (sizes).
    fn field_size(&mut self, o: &Map<String, Value>, path: &str, key: &str) {
        if let Some(n) = self.field_num(o, path, key) {
            if n.fract() != 0.0 || n < -1.0 {
                self.err(
                    &join(path, key),
                    format!("expected an integer >= -1, found {n}"),
                );
            }
        }
    }

    fn name_values(&mut self, o: &Map<String, Value>, path: &str, key: &str) {
        let Some(list) = self.field_array(o, path, key) else {
            return;
        };
        for (i, item) in list.iter().enumerate() {
            let p = format!("{}[{i}]", join(path, key));
            if let Some(obj) = self.object(item, &p) {
                self.field_str(obj, &p, "name");
                self.field_str(obj, &p, "value");
            }
        }
    }

    fn cookies(&mut self, o: &Map<String, Value>, path: &str) {
        let Some(list) = self.field_array(o, path, "cookies") else {
            return;
        };
        for (i, item) in list.iter().enumerate() {
            let p = format!("{path}.cookies[{i}]");
            if let Some(obj) = self.object(item, &p) {
                self.field_str(obj, &p, "name");
                self.field_str(obj, &p, "value");
            }
        }
    }

    fn entry(&mut self, e: &Value, path: &str) {
        let Some(e) = self.object(e, path) else {
            return;
        };
        if let Some(s) = self.field_str(e, path, "startedDateTime") {
            if !is_iso8601_datetime(s) {
                self.err(
                    &join(path, "startedDateTime"),
                    format!("expected an ISO 8601 date-time with offset, found {s:?}"),
                );
            }
        }
        let time = self.field_num(e, path, "time");
        if let Some(t) = time {
            if t < 0.0 {
                self.err(
                    &join(path, "time"),
                    format!("must not be negative, found {t}"),
                );
            }
        }
        if let Some(r) = self.field_object(e, path, "request") {
            self.request(r, &join(path, "request"));
        }
        if let Some(r) = self.field_object(e, path, "response") {
            self.response(r, &join(path, "response"));
        }
        self.field_object(e, path, "cache");
        if let Some(t) = self.field_object(e, path, "timings") {
            self.timings(t, &join(path, "timings"), time);
        }
        for key in ["pageref", "serverIPAddress", "connection", "comment"] {
            self.opt_str(e, path, key);
        }
    }

    fn request(&mut self, r: &Map<String, Value>, path: &str) {
        self.field_str(r, path, "method");
        self.field_str(r, path, "url");
        self.field_str(r, path, "httpVersion");
        self.cookies(r, path);
        self.name_values(r, path, "headers");
        self.name_values(r, path, "queryString");
        if let Some(pd) = self.opt_object(r, path, "postData") {
            let p = join(path, "postData");
            self.field_str(pd, &p, "mimeType");
            self.opt_str(pd, &p, "text");
        }
        self.field_size(r, path, "headersSize");
        self.field_size(r, path, "bodySize");
    }

    fn response(&mut self, r: &Map<String, Value>, path: &str) {
        if let Some(s) = self.field_num(r, path, "status") {
            if s.fract() != 0.0 || !(0.0..=999.0).contains(&s) {
                self.err(
                    &join(path, "status"),
                    format!("expected an HTTP status, found {s}"),
                );
            }
        }
        self.field_str(r, path, "statusText");
        self.field_str(r, path, "httpVersion");
        self.cookies(r, path);
        self.name_values(r, path, "headers");
        if let Some(c) = self.field_object(r, path, "content") {
            let p = join(path, "content");
            self.field_size(c, &p, "size");
            self.field_str(c, &p, "mimeType");
            self.opt_str(c, &p, "text");
            self.opt_str(c, &p, "encoding");
        }
        self.field_str(r, path, "redirectURL");
        self.field_size(r, path, "headersSize");
        self.field_size(r, path, "bodySize");
    }

    fn timings(&mut self, t: &Map<String, Value>, path: &str, time: Option<f64>) {
        let mut sum = 0.0;
        for key in ["send", "wait", "receive"] {
            if let Some(v) = self.field_num(t, path, key) {
                if v < 0.0 {
                    self.err(&join(path, key), format!("must not be negative, found {v}"));
                } else {
                    sum += v;
                }
            }
        }
        let optional = |c: &mut Checker, key: &str| -> Option<f64> {
            match t.get(key) {
                None => None,
                Some(Value::Number(n)) => {
                    let v = n.as_f64().unwrap_or(-1.0);
                    if v < 0.0 && v != -1.0 {
                        c.err(&join(path, key), format!("expected >= 0 or -1, found {v}"));
                    }
                    (v >= 0.0).then_some(v)
                }
                Some(other) => {
                    c.err(
                        &join(path, key),
                        format!("expected number, found {}", kind(other)),
                    );
                    None
                }
            }
        };
        let blocked = optional(self, "blocked");
        let dns = optional(self, "dns");
        let connect = optional(self, "connect");
        let ssl = optional(self, "ssl");
        sum += blocked.unwrap_or(0.0) + dns.unwrap_or(0.0) + connect.unwrap_or(0.0);
        if let Some(ssl) = ssl {
            // HAR 1.2: ssl time is also included in connect.
            match connect {
                Some(c) if c + TIME_TOLERANCE_MS >= ssl => {}
                _ => self.err(
                    &join(path, "ssl"),
                    format!("ssl ({ssl}) must be included in connect ({:?})", connect),
                ),
            }
        }
        if let Some(time) = time {
            if (time - sum).abs() > TIME_TOLERANCE_MS {
                self.err(
                    path,
                    format!(
                        "entry time {time} is not the sum of the timings {sum} \
                         (blocked + dns + connect + send + wait + receive, -1 left out)"
                    ),
                );
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path == "$" {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`, the profile HAR 1.2 asks for. Parsed by
/// hand because the project builds `time` without its `parsing` feature.
fn is_iso8601_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| -> u32 {
        b.get(r)
            .map(|d| {
                d.iter()
                    .fold(0u32, |n, c| n * 10 + u32::from(c.wrapping_sub(b'0')))
            })
            .unwrap_or(0)
    };
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !shape {
        return false;
    }
    let ranges_ok = (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) <= 23
        && num(14..16) <= 59
        && num(17..19) <= 60;
    if !ranges_ok {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+') | Some(b'-') => {
            i + 6 == b.len()
                && digits(i + 1..i + 3)
                && b.get(i + 3) == Some(&b':')
                && digits(i + 4..i + 6)
                && num(i + 1..i + 3) <= 23
                && num(i + 4..i + 6) <= 59
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::build::{build_entry, BuildOptions, EntryBodies};
    use crate::trace::har::Har;
    use crate::trace::testutil::sample_exchange;
    use serde_json::json;

    fn valid() -> Value {
        let mut failed = sample_exchange();
        failed.response = None;
        failed.timings = Default::default();
        let entries = vec![
            build_entry(
                &sample_exchange(),
                None,
                &EntryBodies::default(),
                &BuildOptions::default(),
            ),
            build_entry(
                &failed,
                None,
                &EntryBodies::default(),
                &BuildOptions { redact: true },
            ),
        ];
        serde_json::to_value(Har::new("0.1.0", entries)).expect("serialise")
    }

    fn errors_after(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut v = valid();
        edit(&mut v);
        validate_har_1_2(&v)
    }

    fn remove(v: &mut Value, ptr: &str, key: &str) {
        v.pointer_mut(ptr)
            .and_then(Value::as_object_mut)
            .expect("object at pointer")
            .remove(key);
    }

    #[test]
    fn our_entries_are_valid() {
        assert_eq!(validate_har_1_2(&valid()), Vec::<String>::new());
    }

    #[test]
    fn missing_required_fields_are_reported_with_paths() {
        let cases: &[(&str, &str, &str)] = &[
            ("/log", "version", "log.version: required field is missing"),
            ("/log", "creator", "log.creator: required field is missing"),
            (
                "/log/creator",
                "name",
                "log.creator.name: required field is missing",
            ),
            (
                "/log/entries/0",
                "startedDateTime",
                "log.entries[0].startedDateTime: required",
            ),
            ("/log/entries/0", "time", "log.entries[0].time: required"),
            ("/log/entries/0", "cache", "log.entries[0].cache: required"),
            (
                "/log/entries/1/request",
                "method",
                "log.entries[1].request.method: required",
            ),
            ("/log/entries/0/request", "url", "request.url: required"),
            (
                "/log/entries/0/request",
                "httpVersion",
                "request.httpVersion: required",
            ),
            (
                "/log/entries/0/request",
                "cookies",
                "request.cookies: required",
            ),
            (
                "/log/entries/0/request",
                "headers",
                "request.headers: required",
            ),
            (
                "/log/entries/0/request",
                "queryString",
                "request.queryString: required",
            ),
            (
                "/log/entries/0/request",
                "headersSize",
                "request.headersSize: required",
            ),
            (
                "/log/entries/0/request",
                "bodySize",
                "request.bodySize: required",
            ),
            (
                "/log/entries/0/response",
                "status",
                "response.status: required",
            ),
            (
                "/log/entries/0/response",
                "statusText",
                "response.statusText: required",
            ),
            (
                "/log/entries/0/response",
                "httpVersion",
                "response.httpVersion: required",
            ),
            (
                "/log/entries/0/response",
                "cookies",
                "response.cookies: required",
            ),
            (
                "/log/entries/0/response",
                "headers",
                "response.headers: required",
            ),
            (
                "/log/entries/0/response",
                "content",
                "response.content: required",
            ),
            (
                "/log/entries/0/response/content",
                "size",
                "content.size: required",
            ),
            (
                "/log/entries/0/response/content",
                "mimeType",
                "content.mimeType: required",
            ),
            (
                "/log/entries/0/response",
                "redirectURL",
                "response.redirectURL: required",
            ),
            (
                "/log/entries/0/response",
                "headersSize",
                "response.headersSize: required",
            ),
            (
                "/log/entries/0/response",
                "bodySize",
                "response.bodySize: required",
            ),
            ("/log/entries/0/timings", "send", "timings.send: required"),
            ("/log/entries/0/timings", "wait", "timings.wait: required"),
            (
                "/log/entries/0/timings",
                "receive",
                "timings.receive: required",
            ),
        ];
        for (ptr, key, want) in cases {
            let errs = errors_after(|v| remove(v, ptr, key));
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "{ptr}/{key}: {errs:?}"
            );
        }
        assert!(errors_after(|v| remove(v, "", "log"))[0].contains("log: required"));
    }

    #[test]
    fn wrong_types_and_values_are_reported() {
        type Edit = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| v["log"]["version"] = json!(1.2)),
                "log.version: expected string",
            ),
            (
                Box::new(|v| v["log"]["version"] = json!("2.0")),
                "log.version: expected \"1.2\"",
            ),
            (
                Box::new(|v| v["log"]["entries"] = json!({})),
                "log.entries: expected array",
            ),
            (
                Box::new(|v| v["log"]["entries"][0]["time"] = json!("1")),
                "time: expected number",
            ),
            (
                Box::new(|v| v["log"]["entries"][0]["startedDateTime"] = json!("yesterday")),
                "startedDateTime: expected an ISO 8601",
            ),
            (
                Box::new(|v| v["log"]["entries"][0]["request"]["headers"] = json!([{"name": "a"}])),
                "request.headers[0].value: required",
            ),
            (
                Box::new(|v| v["log"]["entries"][0]["request"]["headersSize"] = json!(1.5)),
                "headersSize: expected an integer",
            ),
            (
                Box::new(|v| v["log"]["entries"][0]["response"]["status"] = json!("200")),
                "status: expected number",
            ),
            (
                Box::new(|v| v["log"]["entries"][0]["timings"]["wait"] = json!(-1.0)),
                "timings.wait: must not be negative",
            ),
            (
                Box::new(|v| v["log"]["entries"][0]["timings"]["ssl"] = json!(99.0)),
                "ssl (99) must be included in connect",
            ),
            (
                Box::new(|v| v["log"]["entries"][0]["time"] = json!(1.0)),
                "is not the sum of the timings",
            ),
            (
                Box::new(|v| v["log"]["entries"][1]["cache"] = json!([])),
                "cache: expected object",
            ),
            (Box::new(|v| *v = json!([])), "$: expected object"),
        ];
        for (edit, want) in cases {
            let errs = errors_after(edit);
            assert!(errs.iter().any(|e| e.contains(want)), "{want}: {errs:?}");
        }
    }

    #[test]
    fn date_times() {
        for ok in [
            "2026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:00Z",
            "2009-07-24T19:20:30.45+01:00",
            "2009-07-24T19:20:30.123456-05:30",
        ] {
            assert!(is_iso8601_datetime(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01 00:00:00Z",
            "２０２６-01-01T00:00:00Z",
        ] {
            assert!(!is_iso8601_datetime(bad), "{bad}");
        }
    }
}
