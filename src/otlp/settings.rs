//! PURE: where spans go and what describes their source, from `--otlp` and the standard
//! OpenTelemetry environment (`OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`). The environment is passed in as a
//! lookup function, so the rules are table-tested without touching the process.

use super::proto::KeyValue;
use crate::trace::urlparts;

/// What went wrong with the OTLP settings; names the variable or flag it came from.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtlpError {
    #[error("{source_name}: {value:?} is not an http:// or https:// URL")]
    BadEndpoint { source_name: String, value: String },
    #[error("{source_name}={value:?}: modscope sends OTLP over HTTP only (http/protobuf or http/json); point it at the collector's HTTP port (4318)")]
    UnsupportedProtocol { source_name: String, value: String },
    #[error("{source_name}: entry {index} is not key=value")]
    BadPair { source_name: String, index: usize },
    #[error("OTEL_EXPORTER_OTLP_TIMEOUT={0:?} is not a number of milliseconds")]
    BadTimeout(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `application/x-protobuf` (the default).
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl OtlpProtocol {
    pub fn content_type(self) -> &'static str {
        match self {
            OtlpProtocol::Protobuf => "application/x-protobuf",
            OtlpProtocol::Json => "application/json",
        }
    }
}

/// A validated destination for spans.
#[derive(Clone, PartialEq)]
pub struct OtlpSettings {
    /// The full traces URL (`http://host:4318/v1/traces`).
    pub url: String,
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query to POST to.
    pub path: String,
    pub protocol: OtlpProtocol,
    /// Extra request headers (an API key, a tenant): sent, never printed.
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
    pub resource: Vec<KeyValue>,
}

impl std::fmt::Debug for OtlpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are secrets (API keys); only their names may show.
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpSettings")
            .field("url", &self.url)
            .field("protocol", &self.protocol)
            .field("headers", &names)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// Facts about this process that go into the resource, gathered by the caller.
#[derive(Debug, Clone, Default)]
pub struct ProcessFacts {
    pub host_name: Option<String>,
    pub pid: u32,
}

/// The settings, or `None` when nothing asks for export. `flag` is `--otlp URL`, which
/// wins over the environment; `env` looks a variable up.
pub fn settings(
    flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    process: &ProcessFacts,
) -> Result<Option<OtlpSettings>, OtlpError> {
    let var = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let (source_name, url) = match (
        flag,
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        var("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(f), _, _) => ("--otlp", traces_url(f)),
        _ if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) => {
            return Ok(None)
        }
        // The per-signal variable is the full URL; the generic one is a base (spec).
        (None, Some(t), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", t),
        (None, None, Some(base)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", traces_url(&base)),
        (None, None, None) => return Ok(None),
    };
    let bad = || OtlpError::BadEndpoint {
        source_name: source_name.to_string(),
        value: url.clone(),
    };
    let parts = urlparts::split(&url).map_err(|_| bad())?;
    let https = match parts.scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(bad()),
    };
    let (host, port) = urlparts::host_port(&url).ok_or_else(bad)?;
    let path = match parts.rest {
        "" => "/".to_string(),
        r if r.starts_with('/') => r.split('#').next().unwrap_or(r).to_string(),
        r => format!("/{}", r.split('#').next().unwrap_or(r)),
    };

    let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .map(|v| ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", v))
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL").map(|v| ("OTEL_EXPORTER_OTLP_PROTOCOL", v)))
    {
        None => OtlpProtocol::Protobuf,
        Some((_, v)) if v == "http/protobuf" => OtlpProtocol::Protobuf,
        Some((_, v)) if v == "http/json" => OtlpProtocol::Json,
        Some((name, v)) => {
            return Err(OtlpError::UnsupportedProtocol {
                source_name: name.to_string(),
                value: v,
            })
        }
    };

    let mut headers = pairs(
        "OTEL_EXPORTER_OTLP_HEADERS",
        var("OTEL_EXPORTER_OTLP_HEADERS"),
    )?;
    for (k, v) in pairs(
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        var("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
    )? {
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&k));
        headers.push((k, v));
    }

    let timeout_ms = match var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
    {
        None => 10_000,
        Some(v) => v.parse::<u64>().map_err(|_| OtlpError::BadTimeout(v))?,
    };

    Ok(Some(OtlpSettings {
        url: urlparts::redact_userinfo(&url, crate::trace::REDACTED),
        https,
        host,
        port,
        path,
        protocol,
        headers,
        timeout_ms,
        resource: resource(env, process)?,
    }))
}

/// `--otlp http://host:4318` and `OTEL_EXPORTER_OTLP_ENDPOINT` name the collector; the
/// traces path is appended unless the URL already ends with it.
fn traces_url(base: &str) -> String {
    let base = base.trim();
    if base.trim_end_matches('/').ends_with("/v1/traces") {
        return base.to_string();
    }
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

/// `k=v,k2=v2` with percent-encoded values (W3C Baggage syntax, as the spec says).
fn pairs(source_name: &str, value: Option<String>) -> Result<Vec<(String, String)>, OtlpError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(index, pair)| {
            let (k, v) = pair.split_once('=').ok_or(OtlpError::BadPair {
                source_name: source_name.to_string(),
                index: index + 1,
            })?;
            let k = k.trim();
            if k.is_empty() {
                return Err(OtlpError::BadPair {
                    source_name: source_name.to_string(),
                    index: index + 1,
                });
            }
            Ok((k.to_string(), urlparts::percent_decode(v.trim())))
        })
        .collect()
}

/// The resource: `OTEL_RESOURCE_ATTRIBUTES`, then `service.name` (`OTEL_SERVICE_NAME`
/// wins, default `modscope`) and what modscope knows of itself.
pub fn resource(
    env: &dyn Fn(&str) -> Option<String>,
    process: &ProcessFacts,
) -> Result<Vec<KeyValue>, OtlpError> {
    let var = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut attrs: Vec<(String, String)> =
        pairs("OTEL_RESOURCE_ATTRIBUTES", var("OTEL_RESOURCE_ATTRIBUTES"))?;
    let service = var("OTEL_SERVICE_NAME")
        .or_else(|| {
            attrs
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| "modscope".to_string());
    attrs.retain(|(k, _)| k != "service.name");
    let mut out = vec![KeyValue::new("service.name", service)];
    let set = |key: &str, value: String, attrs: &[(String, String)], out: &mut Vec<KeyValue>| {
        if !attrs.iter().any(|(k, _)| k == key) {
            out.push(KeyValue::new(key, value));
        }
    };
    set(
        "service.version",
        env!("CARGO_PKG_VERSION").into(),
        &attrs,
        &mut out,
    );
    set("telemetry.sdk.name", "modscope".into(), &attrs, &mut out);
    set("telemetry.sdk.language", "rust".into(), &attrs, &mut out);
    set(
        "telemetry.sdk.version",
        env!("CARGO_PKG_VERSION").into(),
        &attrs,
        &mut out,
    );
    if let Some(h) = &process.host_name {
        set("host.name", h.clone(), &attrs, &mut out);
    }
    out.push(KeyValue::new("process.pid", i64::from(process.pid)));
    out.extend(attrs.into_iter().map(|(k, v)| KeyValue::new(&k, v)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::Value;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn string_attr(list: &[KeyValue], key: &str) -> Option<String> {
        list.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            }
        })
    }

    #[test]
    fn endpoint_rules() {
        let p = ProcessFacts::default();
        type Row = (
            Option<&'static str>,
            &'static [(&'static str, &'static str)],
            Option<&'static str>,
        );
        let table: &[Row] = &[
            (None, &[], None),
            (
                Some("http://127.0.0.1:4318"),
                &[],
                Some("http://127.0.0.1:4318/v1/traces"),
            ),
            (
                Some("http://127.0.0.1:4318/"),
                &[],
                Some("http://127.0.0.1:4318/v1/traces"),
            ),
            (
                Some("http://c:4318/v1/traces"),
                &[],
                Some("http://c:4318/v1/traces"),
            ),
            (
                None,
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example/base")],
                Some("https://otel.example/base/v1/traces"),
            ),
            (
                None,
                &[
                    (
                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                        "https://otel.example/custom",
                    ),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"),
                ],
                Some("https://otel.example/custom"),
            ),
            (
                None,
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"),
                    ("OTEL_SDK_DISABLED", "true"),
                ],
                None,
            ),
            // An explicit flag is a request, whatever the SDK switch says.
            (
                Some("http://c:1"),
                &[("OTEL_SDK_DISABLED", "true")],
                Some("http://c:1/v1/traces"),
            ),
        ];
        for (flag, vars, want) in table {
            let env = env_of(vars);
            let got = settings(*flag, &env, &p).unwrap().map(|s| s.url);
            assert_eq!(got.as_deref(), *want, "{flag:?} {vars:?}");
        }
        let s = settings(Some("https://u:secret@otel.example"), &env_of(&[]), &p)
            .unwrap()
            .unwrap();
        assert!(s.https && s.port == 443 && s.host == "otel.example" && s.path == "/v1/traces");
        assert!(!s.url.contains("secret"), "{}", s.url);
    }

    #[test]
    fn bad_settings_say_where_they_came_from() {
        let p = ProcessFacts::default();
        let err = settings(Some("ftp://x"), &env_of(&[]), &p).unwrap_err();
        assert!(err.to_string().contains("--otlp"), "{err}");
        let err = settings(
            None,
            &env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")]),
            &p,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{err}"
        );
        let err = settings(
            Some("http://x"),
            &env_of(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            &p,
        )
        .unwrap_err();
        assert!(err.to_string().contains("4318"), "{err}");
        let err = settings(
            Some("http://x"),
            &env_of(&[("OTEL_EXPORTER_OTLP_HEADERS", "api-key")]),
            &p,
        )
        .unwrap_err();
        assert_eq!(
            err,
            OtlpError::BadPair {
                source_name: "OTEL_EXPORTER_OTLP_HEADERS".into(),
                index: 1
            }
        );
    }

    #[test]
    fn headers_are_decoded_merged_and_never_shown() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cr%20t, tenant=a"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "tenant=b"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        let s = settings(Some("http://c:4318"), &env, &ProcessFacts::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            s.headers,
            vec![
                ("x-api-key".into(), "s3cr t".into()),
                ("tenant".into(), "b".into())
            ]
        );
        assert_eq!(s.protocol, OtlpProtocol::Json);
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cr") && shown.contains("x-api-key"),
            "{shown}"
        );
    }

    #[test]
    fn resource_attributes() {
        let p = ProcessFacts {
            host_name: Some("runner-7".into()),
            pid: 42,
        };
        let r = resource(&env_of(&[]), &p).unwrap();
        assert_eq!(string_attr(&r, "service.name").as_deref(), Some("modscope"));
        assert_eq!(string_attr(&r, "host.name").as_deref(), Some("runner-7"));
        let env = env_of(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=ci,deployment.environment=prod,host.name=pod%2F1",
        )]);
        let r = resource(&env, &p).unwrap();
        assert_eq!(string_attr(&r, "service.name").as_deref(), Some("ci"));
        assert_eq!(
            string_attr(&r, "deployment.environment").as_deref(),
            Some("prod")
        );
        assert_eq!(
            string_attr(&r, "host.name").as_deref(),
            Some("pod/1"),
            "the user's value wins"
        );
        assert_eq!(r.iter().filter(|kv| kv.key == "host.name").count(), 1);
        let env = env_of(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=ci"),
            ("OTEL_SERVICE_NAME", "gobuild"),
        ]);
        assert_eq!(
            string_attr(&resource(&env, &p).unwrap(), "service.name").as_deref(),
            Some("gobuild")
        );
    }
}
