//! OpenTelemetry export: every exchange as an OTLP span (HTTP client semantic conventions
//! plus Go, TLS and fault attributes), sent to a collector or written as OTLP/JSON lines.
//!
//! `settings` (pure) reads `--otlp` and the standard `OTEL_*` variables; `span` (pure)
//! maps trace entries to spans; `json` (pure) is the OTLP/JSON file format; `exporter`
//! (IO) owns the queue, the batching and the HTTP client, and never slows proxying.

pub mod exporter;
pub mod json;
pub mod proto;
pub mod settings;
pub mod span;

pub use exporter::{ExportStats, OtlpExporter, OtlpObserver, SpanGrouping};
pub use settings::{OtlpError, OtlpProtocol, OtlpSettings};
pub use span::{entry_span, parse_traceparent, run_span, RunFacts, SpanContext};

use proto::{
    ExportTraceServiceRequest, InstrumentationScope, KeyValue, ResourceSpans, ScopeSpans, Span,
};

/// The semantic-conventions schema the attribute names follow.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";

/// One export request holding `spans` under `resource`.
pub fn export_request(resource: &[KeyValue], spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(proto::Resource {
                attributes: resource.to_vec(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "modscope".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
                spans,
                schema_url: SCHEMA_URL.into(),
            }],
            schema_url: SCHEMA_URL.into(),
        }],
    }
}
