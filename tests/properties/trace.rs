//! Properties of trace entries, HAR output and the journal reader.

use super::*;

/// A journal line that is a real entry, to mix with garbage.
fn good_line() -> String {
    r#"{"startedDateTime":"2026-01-01T00:00:00.000Z","time":1.0,"request":{"method":"GET","url":"https://proxy.golang.org/example.com/m/@v/list","httpVersion":"HTTP/2","cookies":[],"headers":[],"queryString":[],"headersSize":-1,"bodySize":0},"response":{"status":200,"statusText":"OK","httpVersion":"HTTP/2","cookies":[],"headers":[],"content":{"size":7,"mimeType":"text/plain","text":"v1.0.0\n"},"redirectURL":"","headersSize":-1,"bodySize":7},"cache":{},"timings":{"send":0,"wait":1,"receive":0}}"#.to_string()
}

fn journal_line() -> impl Strategy<Value = Vec<u8>> {
    let good = good_line();
    let cut_good = good.clone();
    let edited = good.clone();
    prop_oneof![
        Just(good.into_bytes()),
        (0usize..400).prop_map(move |n| cut_good.as_bytes()[..n.min(cut_good.len())].to_vec()),
        (
            one_of(&[
                "\"time\":1.0",
                "\"status\":200",
                "\"url\":\"https://proxy.golang.org/example.com/m/@v/list\"",
                "\"text\":\"v1.0.0\\n\"",
                "\"cache\":{}",
                "\"size\":7"
            ]),
            one_of(&[
                "\"time\":null",
                "\"status\":-5",
                "\"url\":\"relative/x\"",
                "\"url\":\"\"",
                "\"text\":\"\",\"encoding\":\"base64\",\"_file\":\"../../etc/passwd\"",
                "\"cache\":[]",
                "\"size\":1e400",
                "\"_sha256\":\"zz\",\"_file\":\"bodies/zz\"",
                "\"_id\":\"x\",\"_go\":[1],\"_tls\":5",
                "\"status\":99999999999999999999"
            ]),
        )
            .prop_map(move |(from, to)| edited.replacen(&from, &to, 1).into_bytes()),
        one_of(&[
            "",
            "{}",
            "null",
            "[]",
            "[1,2]",
            "\"x\"",
            "{\"log\":{}}",
            "{\"log\":{\"entries\":5}}",
            "\u{feff}{}",
            "1e999999",
            "{\"startedDateTime\":1}"
        ])
        .prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn load_trace_never_panics_on_arbitrary_journals(
        lines in proptest::collection::vec(journal_line(), 0..12),
        trailing_newline in any::<bool>(),
        har in proptest::option::of(prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..100),
            Just(b"{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"x\",\"version\":\"1\"},\"entries\":[]}}".to_vec()),
            Just(b"{\"log\":{\"entries\":[{}]}}".to_vec()),
        ]),
    ) {
        let dir = TempDir::new("prop-journal");
        let mut journal = lines.join(&b'\n');
        if trailing_newline {
            journal.push(b'\n');
        }
        std::fs::write(dir.path().join("journal.jsonl"), &journal).unwrap();
        if let Some(har) = &har {
            std::fs::write(dir.path().join("trace.har"), har).unwrap();
        }
        // Directory, journal file and HAR file entry points.
        let _ = load_trace(dir.path());
        if let Ok(t) = load_trace(&dir.path().join("journal.jsonl")) {
            prop_assert!(
                t.entries.len() <= lines.len(),
                "more entries ({}) than journal lines ({})",
                t.entries.len(),
                lines.len()
            );
        }
        if har.is_some() {
            let _ = load_trace(&dir.path().join("trace.har"));
        }
    }
}

fn opt_str() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any::<String>())
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            prop_oneof![
                one_of(&[
                    "content-type",
                    "authorization",
                    "Cookie",
                    "set-cookie",
                    "location",
                    "proxy-authorization",
                    "user-agent",
                    "x-go"
                ]),
                any::<String>(),
            ],
            any::<String>(),
        ),
        0..5,
    )
}

fn body_facts() -> impl Strategy<Value = BodyFacts> {
    (
        any::<u64>(),
        proptest::option::of("[0-9a-f]{64}"),
        any::<bool>(),
    )
        .prop_map(|(size, sha256, complete)| BodyFacts {
            size,
            sha256,
            complete,
        })
}

/// Phase durations as the proxy measures them (milliseconds, up to about a day), with the
/// glitches `build_entry` documents handling: missing, negative, NaN, infinite.
fn phase() -> impl Strategy<Value = Option<f64>> + Clone {
    prop_oneof![
        4 => proptest::option::of(0.0f64..100_000_000.0),
        1 => one_of_f64(&[0.0, -0.0, -1.0, -1e-9, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-7]).prop_map(Some),
    ]
}

fn one_of_f64(items: &'static [f64]) -> impl Strategy<Value = f64> {
    proptest::sample::select(items)
}

fn phase_times(
    phase: impl Strategy<Value = Option<f64>> + Clone,
) -> impl Strategy<Value = PhaseTimes> {
    (
        phase.clone(),
        phase.clone(),
        phase.clone(),
        phase.clone(),
        phase.clone(),
        phase.clone(),
        phase,
    )
        .prop_map(|(blocked, dns, tcp, tls, send, wait, receive)| PhaseTimes {
            blocked,
            dns,
            tcp,
            tls,
            send,
            wait,
            receive,
        })
}

fn tls_facts() -> impl Strategy<Value = Option<TlsFacts>> {
    let client = proptest::option::of(
        (
            opt_str(),
            proptest::collection::vec(any::<String>(), 0..3),
            opt_str(),
            opt_str(),
        )
            .prop_map(|(sni, alpn, version, cipher)| ClientTls {
                sni,
                alpn,
                version,
                cipher,
            }),
    );
    let cert = (
        any::<String>(),
        any::<String>(),
        any::<String>(),
        proptest::collection::vec(any::<String>(), 0..3),
    )
        .prop_map(|(subject, issuer, not_before, dns_names)| CertFacts {
            subject,
            issuer,
            not_before: not_before.clone(),
            not_after: not_before,
            dns_names,
            sha256: "00".repeat(32),
        });
    let upstream = proptest::option::of(
        (
            opt_str(),
            opt_str(),
            any::<bool>(),
            opt_str(),
            proptest::collection::vec(cert, 0..2),
        )
            .prop_map(
                |(version, cipher, verified, error, certificates)| UpstreamTls {
                    version,
                    cipher: cipher.clone(),
                    alpn: cipher,
                    verified,
                    error,
                    certificates: certificates.into(),
                },
            ),
    );
    proptest::option::of(
        (client, upstream).prop_map(|(client, upstream)| TlsFacts { client, upstream }),
    )
}

/// Seconds from year 0001 to year 9999, the range HAR's four-digit years can show.
const MIN_SECS: i64 = -62_135_596_800;
const MAX_SECS: i64 = 253_402_300_799;

fn exchange_with(
    phase: impl Strategy<Value = Option<f64>> + Clone + 'static,
) -> impl Strategy<Value = Exchange> {
    let url = prop_oneof![
        url_shaped(),
        any::<String>(),
        one_of(&[
            "https://alice:s3cret@proxy.golang.org/x/@v/list?a=1&b=%20&&c",
            "https://proxy.golang.org/%E9%ZZ?é=ü&%=",
            "http://[::1]:8080/?q"
        ]),
    ];
    let request = (any::<String>(), url, any::<String>(), pairs(), body_facts()).prop_map(
        |(method, url, http_version, headers, body)| ExchangeRequest {
            method,
            url,
            http_version,
            headers,
            body,
        },
    );
    let response = proptest::option::of(
        (
            100u16..1000,
            any::<String>(),
            pairs(),
            pairs(),
            body_facts(),
        )
            .prop_map(
                |(status, http_version, headers, trailers, body)| ResponseFacts {
                    status,
                    http_version,
                    headers,
                    trailers,
                    body,
                },
            ),
    );
    let error = proptest::option::of(
        (any::<String>(), any::<String>(), any::<String>()).prop_map(|(phase, kind, message)| {
            // Any word, known or not, must survive the round trip.
            ExchangeError::new(FailPhase::parse(&phase), ErrorKind::parse(&kind), message)
        }),
    );
    let fault = proptest::option::of(
        (any::<String>(), any::<String>()).prop_map(|(rule, action)| FaultFacts { rule, action }),
    );
    (
        any::<u64>(),
        MIN_SECS..=MAX_SECS,
        0u32..1_000_000,
        request,
        response,
        phase_times(phase),
        proptest::option::of(any::<u64>()),
        opt_str(),
        tls_facts(),
        error,
        fault,
    )
        .prop_map(
            |(
                id,
                secs,
                micros,
                request,
                response,
                timings,
                connection_id,
                server_ip,
                tls,
                error,
                fault,
            )| {
                let started = if secs >= 0 {
                    UNIX_EPOCH
                        + Duration::from_secs(secs as u64)
                        + Duration::from_micros(micros as u64)
                } else {
                    UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
                        + Duration::from_micros(micros as u64)
                };
                Exchange {
                    id,
                    started,
                    request,
                    response,
                    timings,
                    connection_id,
                    server_ip,
                    tls,
                    error,
                    fault,
                    client_connection: None,
                    stall: None,
                }
            },
        )
}

fn body_content() -> impl Strategy<Value = BodyContent> {
    (
        proptest::option::of("[0-9a-f]{64}"),
        any::<bool>(),
        opt_str(),
        proptest::option::of("[A-Za-z0-9+/]{0,40}={0,2}"),
    )
        .prop_map(|(sha256, with_file, text, base64)| BodyContent {
            file: if with_file {
                sha256.as_ref().map(|s| format!("bodies/{s}"))
            } else {
                None
            },
            sha256,
            text,
            base64,
            decoded_size: None,
        })
}

fn entries_of(
    exchanges: &[Exchange],
    bodies: &[(BodyContent, BodyContent)],
    redact: bool,
) -> Vec<Entry> {
    exchanges
        .iter()
        .zip(bodies.iter().cycle())
        .map(|(ex, (request, response))| {
            let go = classify(&ex.request.method, &ex.request.url, &[]);
            build_entry(
                ex,
                serde_json::to_value(&go).ok(),
                &EntryBodies {
                    request: request.clone(),
                    response: response.clone(),
                },
                &BuildOptions { redact },
            )
        })
        .collect()
}

fn check_entries_round_trip_and_validate(entries: Vec<Entry>) -> Result<(), TestCaseError> {
    for entry in &entries {
        let json = serde_json::to_value(entry)
            .map_err(|e| TestCaseError::fail(format!("serialise: {e}")))?;
        let back: Entry = serde_json::from_value(json.clone())
            .map_err(|e| TestCaseError::fail(format!("{json}\ndoes not parse back: {e}")))?;
        let again = serde_json::to_value(&back)
            .map_err(|e| TestCaseError::fail(format!("serialise again: {e}")))?;
        prop_assert_eq!(
            &again,
            &json,
            "Entry -> JSON -> Entry -> JSON changed the entry"
        );
        // Through text too: this is what the journal stores.
        let text = serde_json::to_string(entry)
            .map_err(|e| TestCaseError::fail(format!("to_string: {e}")))?;
        let from_text: Entry = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}\ndoes not parse back: {e}")))?;
        let from_text =
            serde_json::to_value(&from_text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            &from_text,
            &json,
            "the journal text form changed the entry: {}",
            text
        );
    }
    let doc = serde_json::to_value(Har::new("0.1.0", entries))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let problems = validate_har_1_2(&doc);
    prop_assert!(problems.is_empty(), "HAR problems: {problems:#?}");
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn built_entries_round_trip_and_make_a_valid_har(
        exchanges in proptest::collection::vec(exchange_with(phase()), 0..4),
        bodies in proptest::collection::vec((body_content(), body_content()), 1..3),
        redact in any::<bool>(),
    ) {
        check_entries_round_trip_and_validate(entries_of(&exchanges, &bodies, redact))?;
    }
}

/// Phase durations far outside what a clock can measure: any positive normal `f64`.
fn absurd_phase() -> impl Strategy<Value = Option<f64>> + Clone {
    proptest::option::of(proptest::num::f64::POSITIVE | proptest::num::f64::NORMAL)
}

fn one_entry(exchange: &Exchange) -> Entry {
    entries_of(
        std::slice::from_ref(exchange),
        &[(BodyContent::default(), BodyContent::default())],
        false,
    )
    .remove(0)
}

proptest! {
    #![proptest_config(config(256))]

    /// `build_entry` promises a well-formed entry for *any* exchange.
    #[test]
    fn built_entries_are_valid_har_for_any_finite_duration(exchange in exchange_with(absurd_phase())) {
        let doc = serde_json::to_value(Har::new("0.1.0", vec![one_entry(&exchange)]))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let problems = validate_har_1_2(&doc);
        prop_assert!(problems.is_empty(), "timings {:?}: {problems:#?}", exchange.timings);
    }

    /// The journal stores entries as text; reading a line back must give the same entry.
    #[test]
    fn journal_text_keeps_any_duration_exactly(exchange in exchange_with(absurd_phase())) {
        let entry = one_entry(&exchange);
        let value = serde_json::to_value(&entry).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assume!(!value.to_string().contains("null"));
        let text = serde_json::to_string(&entry).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Entry = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back.time.to_bits(), entry.time.to_bits(), "time {} came back as {} from {}", entry.time, back.time, text);
        prop_assert_eq!(&back, &entry, "entry changed through {}", text);
    }
}
