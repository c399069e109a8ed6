//! PURE: OTLP/JSON encoding of an export request (one line of `--otlp-file`), following
//! the OTLP specification's JSON mapping: lowerCamelCase keys, trace and span ids as hex
//! (not base64), 64-bit integers as decimal strings, enums as integers.

use serde_json::{json, Map, Value};

use super::proto::{self, AnyValue, ExportTraceServiceRequest, KeyValue};

fn any_value(v: &AnyValue) -> Value {
    match &v.value {
        Some(proto::Value::StringValue(s)) => json!({ "stringValue": s }),
        Some(proto::Value::BoolValue(b)) => json!({ "boolValue": b }),
        Some(proto::Value::IntValue(i)) => json!({ "intValue": i.to_string() }),
        Some(proto::Value::DoubleValue(d)) if d.is_finite() => json!({ "doubleValue": d }),
        // JSON has no NaN/Infinity literal; protobuf's JSON mapping spells them as strings.
        Some(proto::Value::DoubleValue(d)) => {
            json!({ "doubleValue": if d.is_nan() { "NaN" } else if *d > 0.0 { "Infinity" } else { "-Infinity" } })
        }
        None => json!({}),
    }
}

fn attributes(list: &[KeyValue]) -> Value {
    Value::Array(
        list.iter()
            .map(|kv| {
                json!({
                    "key": kv.key,
                    "value": kv.value.as_ref().map(any_value).unwrap_or_else(|| json!({})),
                })
            })
            .collect(),
    )
}

fn span(s: &proto::Span) -> Value {
    let mut m = Map::new();
    m.insert("traceId".into(), hex::encode(&s.trace_id).into());
    m.insert("spanId".into(), hex::encode(&s.span_id).into());
    if !s.parent_span_id.is_empty() {
        m.insert("parentSpanId".into(), hex::encode(&s.parent_span_id).into());
    }
    m.insert("flags".into(), s.flags.into());
    m.insert("name".into(), s.name.clone().into());
    m.insert("kind".into(), s.kind.into());
    m.insert(
        "startTimeUnixNano".into(),
        s.start_time_unix_nano.to_string().into(),
    );
    m.insert(
        "endTimeUnixNano".into(),
        s.end_time_unix_nano.to_string().into(),
    );
    m.insert("attributes".into(), attributes(&s.attributes));
    if !s.events.is_empty() {
        let events = s
            .events
            .iter()
            .map(|e| {
                json!({
                    "timeUnixNano": e.time_unix_nano.to_string(),
                    "name": e.name,
                    "attributes": attributes(&e.attributes),
                })
            })
            .collect();
        m.insert("events".into(), Value::Array(events));
    }
    if let Some(status) = &s.status {
        let mut st = Map::new();
        if !status.message.is_empty() {
            st.insert("message".into(), status.message.clone().into());
        }
        st.insert("code".into(), status.code.into());
        m.insert("status".into(), Value::Object(st));
    }
    Value::Object(m)
}

/// The request as one OTLP/JSON document.
pub fn request_to_json(req: &ExportTraceServiceRequest) -> Value {
    let resource_spans: Vec<Value> = req
        .resource_spans
        .iter()
        .map(|rs| {
            let scope_spans: Vec<Value> = rs
                .scope_spans
                .iter()
                .map(|ss| {
                    let mut m = Map::new();
                    if let Some(scope) = &ss.scope {
                        m.insert(
                            "scope".into(),
                            json!({ "name": scope.name, "version": scope.version }),
                        );
                    }
                    m.insert(
                        "spans".into(),
                        Value::Array(ss.spans.iter().map(span).collect()),
                    );
                    Value::Object(m)
                })
                .collect();
            let mut m = Map::new();
            if let Some(resource) = &rs.resource {
                m.insert(
                    "resource".into(),
                    json!({ "attributes": attributes(&resource.attributes) }),
                );
            }
            m.insert("scopeSpans".into(), Value::Array(scope_spans));
            if !rs.schema_url.is_empty() {
                m.insert("schemaUrl".into(), rs.schema_url.clone().into());
            }
            Value::Object(m)
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::{Event, Span, SpanKind, Status, StatusCode};

    #[test]
    fn json_mapping_follows_otlp() {
        let span = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            parent_span_id: vec![],
            name: "GET".into(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: 1_700_000_000_000_000_001,
            end_time_unix_nano: 1_700_000_000_000_000_002,
            attributes: vec![
                KeyValue::new("s", "x"),
                KeyValue::new("i", 7i64),
                KeyValue::new("d", 1.5f64),
                KeyValue::new("b", true),
            ],
            events: vec![Event {
                time_unix_nano: 3,
                name: "e".into(),
                attributes: vec![],
            }],
            status: Some(Status {
                message: "m".into(),
                code: StatusCode::Error as i32,
            }),
            flags: 1,
            trace_state: String::new(),
        };
        let doc = request_to_json(&crate::otlp::export_request(
            &[KeyValue::new("service.name", "modscope")],
            vec![span],
        ));
        let s = &doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "abababababababababababababababab");
        assert_eq!(s["spanId"], "cdcdcdcdcdcdcdcd");
        assert!(s.get("parentSpanId").is_none());
        assert_eq!(s["kind"], 3);
        assert_eq!(s["startTimeUnixNano"], "1700000000000000001");
        assert_eq!(s["attributes"][1]["value"]["intValue"], "7");
        assert_eq!(s["attributes"][2]["value"]["doubleValue"], 1.5);
        assert_eq!(s["attributes"][3]["value"]["boolValue"], true);
        assert_eq!(s["events"][0]["timeUnixNano"], "3");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(
            doc["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "modscope"
        );
        assert_eq!(
            doc["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"],
            "modscope"
        );
    }
}
