//! Properties of fault rule parsing and serialisation (TOML, JSON, inline specs).

use super::*;

/// Characters and words of the inline spec syntax, to reach deep into the parser.
const SPEC_PIECES: &[&str] = &[
    ":",
    ",",
    "=",
    "@",
    "|",
    "*",
    "%",
    ".",
    "..",
    "~",
    "/",
    "+",
    " ",
    "host",
    "kind",
    "module",
    "version",
    "method",
    "path",
    "status",
    "p",
    "probability",
    "first",
    "every",
    "after",
    "name",
    "zip",
    "mod",
    "5xx",
    "502",
    "0",
    "1",
    "18446744073709551616",
    "999999999999",
    "0.5",
    "50%",
    "1e3",
    "inf",
    "NaN",
    "-1",
    "ms",
    "s",
    "KiB",
    "MiB",
    "GiB",
    "B",
    "/s",
    "respond",
    "latency",
    "bandwidth",
    "stall",
    "reset",
    "truncate",
    "corrupt",
    "refuse",
    "close",
    "tls",
    "then",
    "header",
    "body",
    "down",
    "up",
    "forever",
    "lognormal:",
    "untrusted",
    "expired",
    "wrong_host",
    "é",
    "\u{0}",
];

fn spec_shaped() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(SPEC_PIECES), 0..16).prop_map(|p| p.concat())
}

const TOML_PIECES: &[&str] = &[
    "[[rule]]\n",
    "seed = 42\n",
    "seed = -1\n",
    "name = \"r\"\n",
    "match = { host = \"*\" }\n",
    "match.kind = [\"zip\", \"mod\"]\n",
    "match.kind = \"nope\"\n",
    "match.status = [502, \"5xx\"]\n",
    "match.status = 99\n",
    "probability = 0.5\n",
    "probability = \"5%\"\n",
    "probability = 2\n",
    "first = 0\n",
    "every = 3\n",
    "after = 1\n",
    "respond = { status = 502 }\n",
    "respond = { status = 99 }\n",
    "latency = { fixed_ms = 200 }\n",
    "latency = { fixed_ms = \"1s\", jitter = { normal = { mean_ms = 0, stddev_ms = 50 } } }\n",
    "latency = { jitter = { uniform = { min_ms = 5, max_ms = 1 } } }\n",
    "bandwidth = { down_bytes_per_sec = \"256KiB/s\" }\n",
    "bandwidth = {}\n",
    "stall = { ms = 10, after_bytes = \"1KiB\" }\n",
    "stall = { fraction = 1.5 }\n",
    "reset = {}\n",
    "reset = { fraction = 0.5, after_bytes = 10 }\n",
    "truncate = { after_bytes = 1000 }\n",
    "corrupt = { count = 4 }\n",
    "refuse_connect = { status = 403 }\n",
    "close_after_connect = true\n",
    "close_after_connect = false\n",
    "tls = { cert = \"expired\", stall_ms = 100 }\n",
    "tls = { cert = \"bogus\" }\n",
    "unknown = 1\n",
    "= \n",
    "[rule]\n",
    "\"\n",
    "{",
    "}",
    "[",
    "]",
    "\n",
    "#c\n",
    "é",
    "\u{0}",
];

fn toml_shaped() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOML_PIECES), 0..12).prop_map(|p| p.concat())
}

/// Matchers of the spec grammar, each with a key (a key may appear once per spec).
fn matcher(full: bool) -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        one_of(&["proxy.golang.org", "*.golang.org", "*"])
            .prop_map(|v| ("host", format!("host={v}"))),
        one_of(&[
            "zip",
            "zip|mod",
            "list|info|latest",
            "sumdb-lookup",
            "other"
        ])
        .prop_map(|v| ("kind", format!("kind={v}"))),
        one_of(&["golang.org/x/*", "example.com/hello", "*"])
            .prop_map(|v| ("module", format!("module={v}"))),
        one_of(&["v1.*", "v0.14.0", "*"]).prop_map(|v| ("version", format!("version={v}"))),
        one_of(&["GET", "GET|HEAD", "post"]).prop_map(|v| ("method", format!("method={v}"))),
        one_of(&["*/@v/*.zip", "/x/*", "*"]).prop_map(|v| ("path", format!("path={v}"))),
        one_of(&["5xx", "502|404", "2xx|304"]).prop_map(|v| ("status", format!("status={v}"))),
        prop_oneof![
            (0u32..=100).prop_map(|n| format!("{n}%")),
            real(0.0, 1.0, full),
        ]
        .prop_map(|v| ("p", format!("p={v}"))),
        (1u64..1000).prop_map(|n| ("first", format!("first={n}"))),
        (1u64..1000).prop_map(|n| ("every", format!("every={n}"))),
        (0u64..1000).prop_map(|n| ("after", format!("after={n}"))),
        "[a-z][a-z0-9-]{0,10}".prop_map(|n| ("name", format!("name={n}"))),
    ]
}

fn dur() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..100_000).prop_map(|n| format!("{n}ms")),
        (0u64..3_600).prop_map(|n| format!("{n}s")),
        (0u32..10_000).prop_map(|n| format!("{}.{}s", n / 10, n % 10)),
    ]
}

fn size() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..10_000_000).prop_map(|n| n.to_string()),
        (0u64..4096).prop_map(|n| format!("{n}KiB")),
        (0u64..64).prop_map(|n| format!("{n}MiB")),
        (1u64..4).prop_map(|n| format!("{n}GiB")),
    ]
}

/// Rates must not be zero (`stall` is the way to stop traffic).
fn rate() -> impl Strategy<Value = String> {
    size().prop_filter("a zero rate is refused", |s| {
        s.trim_start_matches('0')
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

fn at(full: bool) -> impl Strategy<Value = String> {
    prop_oneof![
        size(),
        (0u32..=100).prop_map(|n| format!("{n}%")),
        real(0.0, 1.0, full),
    ]
}

/// A decimal in `lo..=hi`: as people write them (at most 4 decimals), or with every
/// digit of the shortest representation that round-trips an `f64` (up to 17).
fn real(lo: f64, hi: f64, full: bool) -> impl Strategy<Value = String> {
    (lo..=hi).prop_map(move |f| {
        if full {
            format!("{f}")
        } else {
            let s = format!("{f:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s.is_empty() || s == "-" {
                "0".to_string()
            } else {
                s.to_string()
            }
        }
    })
}

/// Actions of the spec grammar, with generated arguments.
fn action(full: bool) -> impl Strategy<Value = String> {
    let status = (200u16..=599).prop_map(|s| s.to_string());
    prop_oneof![
        status.clone(),
        (
            status.clone(),
            proptest::option::of("[a-z ]{1,12}"),
            proptest::option::of("[0-9]{1,3}")
        )
            .prop_map(|(s, body, retry)| {
                let mut a = format!("respond={s}");
                if let Some(r) = retry {
                    a.push_str(&format!(",header=Retry-After={r}"));
                }
                if let Some(b) = body {
                    a.push_str(&format!(",body={b}"));
                }
                a
            }),
        dur().prop_map(|d| format!("latency={d}")),
        (dur(), dur()).prop_map(|(a, b)| format!("latency={a}~{b}")),
        (0u64..5_000, 0u64..5_000).prop_map(|(a, b)| format!(
            "latency={}ms..{}ms",
            a.min(b),
            a.max(b)
        )),
        (real(-5.0, 8.0, full), real(0.0, 3.0, full))
            .prop_map(|(mu, sigma)| format!("latency=lognormal:{mu}/{sigma}")),
        (rate(), proptest::option::of(rate())).prop_map(|(d, u)| match u {
            Some(u) => format!("bandwidth={d}/s,up={u}/s"),
            None => format!("bandwidth={d}/s"),
        }),
        rate().prop_map(|u| format!("bandwidth,up={u}")),
        (
            proptest::option::of(dur()),
            proptest::option::of(at(full)),
            one_of(&["", ",then=close", ",then=reset"])
        )
            .prop_map(|(d, at, then)| {
                let mut a = "stall".to_string();
                if let Some(d) = d {
                    a.push_str(&format!("={d}"));
                }
                if let Some(at) = at {
                    a.push_str(&format!("@{at}"));
                }
                a.push_str(&then);
                a
            }),
        proptest::option::of(at(full)).prop_map(|at| match at {
            Some(at) => format!("reset@{at}"),
            None => "reset".to_string(),
        }),
        at(full).prop_map(|at| format!("truncate@{at}")),
        at(full).prop_map(|at| format!("truncate={at}")),
        (proptest::option::of(1u32..64), proptest::option::of(size())).prop_map(|(n, off)| {
            let mut a = "corrupt".to_string();
            if let Some(n) = n {
                a.push_str(&format!("={n}"));
            }
            if let Some(off) = off {
                a.push_str(&format!("@{off}"));
            }
            a
        }),
        proptest::option::of((400u16..=599).prop_map(|s| s.to_string())).prop_map(|s| match s {
            Some(s) => format!("refuse={s}"),
            None => "refuse".to_string(),
        }),
        Just("close".to_string()),
        (
            proptest::option::of(dur()),
            proptest::option::of(one_of(&["untrusted", "expired", "wrong_host"]))
        )
            .prop_filter("tls needs a part", |(d, c)| d.is_some() || c.is_some())
            .prop_map(|(d, c)| {
                let parts: Vec<String> = d.into_iter().chain(c).collect();
                format!("tls={}", parts.join("+"))
            }),
    ]
}

/// A spec from the grammar: unique matcher keys, then one action.
fn grammar_spec(full: bool) -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(matcher(full), 0..5),
        action(full),
        any::<bool>(),
    )
        .prop_map(|(ms, action, star)| {
            let mut seen = Vec::new();
            let mut items = Vec::new();
            for (key, item) in ms {
                if !seen.contains(&key) {
                    seen.push(key);
                    items.push(item);
                }
            }
            let matchers = if items.is_empty() && star {
                "*".to_string()
            } else {
                items.join(",")
            };
            format!("{matchers}:{action}")
        })
}

/// Rules acting before the request exists (CONNECT, client TLS) may only match on host.
fn acts_before_request(spec: &str) -> bool {
    let action = spec.split_once(':').map(|(_, a)| a).unwrap_or("");
    action.starts_with("refuse") || action == "close" || action.starts_with("tls=")
}

/// The documented refusals a grammar spec can meet: a CONNECT/TLS-phase action that
/// matches on more than the host, and an upload cap on a rule that waits for the status.
fn expected_refusal(spec: &str) -> bool {
    let (matchers, action) = spec.split_once(':').unwrap_or(("", ""));
    let status_matcher = matchers.split(',').any(|m| m.starts_with("status="));
    (acts_before_request(spec) && !only_host_or_selection(spec))
        || (action.starts_with("bandwidth") && action.contains("up=") && status_matcher)
}

fn only_host_or_selection(spec: &str) -> bool {
    let matchers = spec.split_once(':').map(|(m, _)| m).unwrap_or("");
    matchers.is_empty()
        || matchers == "*"
        || matchers.split(',').all(|m| {
            let key = m.split('=').next().unwrap_or("");
            matches!(key, "host" | "p" | "first" | "every" | "after" | "name")
        })
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn parse_spec_never_panics_and_what_parses_validates(
        spec in prop_oneof![any::<String>(), spec_shaped(), grammar_spec(true)],
    ) {
        if let Ok(rule) = parse_spec(&spec) {
            prop_assert!(rule.validate().is_ok(), "{spec:?} parsed into an invalid rule: {rule:?}");
        }
    }

    #[test]
    fn parse_toml_never_panics_and_what_parses_validates(
        text in prop_oneof![any::<String>(), toml_shaped()],
    ) {
        if let Ok(file) = parse_toml(&text, "rules.toml") {
            for rule in &file.rules {
                prop_assert!(rule.validate().is_ok(), "{text:?} gave an invalid rule: {rule:?}");
            }
        }
    }

    /// Numbers as people write them in `--fault` specs.
    #[test]
    fn grammar_specs_parse_and_round_trip_through_json_and_toml(spec in grammar_spec(false)) {
        check_spec_round_trips(&spec)?;
    }

    /// Numbers with all 17 significant digits, as the admin API echoes computed values.
    #[test]
    fn full_precision_specs_round_trip_through_json(spec in grammar_spec(true)) {
        check_spec_round_trips(&spec)?;
    }
}

/// Parses a grammar spec and checks the rule validates and survives JSON (the admin API)
/// and TOML (saved rule files) unchanged.
fn check_spec_round_trips(spec: &str) -> Result<(), TestCaseError> {
    let rule = match parse_spec(spec) {
        Ok(rule) => rule,
        Err(e) => {
            // The only refusals the grammar can produce, see `expected_refusal`.
            prop_assert!(
                expected_refusal(spec),
                "grammar spec {spec:?} was refused: {e}"
            );
            return Ok(());
        }
    };
    prop_assert!(
        rule.validate().is_ok(),
        "{spec:?}: {rule:?} does not validate"
    );
    if acts_before_request(spec) {
        prop_assert!(
            matches!(rule.phase(), Phase::Connect | Phase::Tls),
            "{spec:?}: phase {:?}",
            rule.phase()
        );
    }
    let json = serde_json::to_string(&rule)
        .map_err(|e| TestCaseError::fail(format!("{spec:?}: serialise: {e}")))?;
    let back: Rule = parse_json_rule(&json).map_err(|e| {
        TestCaseError::fail(format!("{spec:?}: JSON {json} does not parse back: {e}"))
    })?;
    prop_assert_eq!(&back, &rule, "JSON round trip of {:?} via {}", spec, json);

    let file = RuleFile {
        seed: Some(7),
        rules: vec![rule.clone()],
    };
    let toml_text = file
        .to_toml()
        .map_err(|e| TestCaseError::fail(format!("{spec:?}: to_toml: {e}")))?;
    let parsed = parse_toml(&toml_text, "saved.toml").map_err(|e| {
        TestCaseError::fail(format!(
            "{spec:?}: TOML\n{toml_text}\ndoes not parse back: {e}"
        ))
    })?;
    prop_assert_eq!(
        parsed,
        file,
        "TOML round trip of {:?} via\n{}",
        spec,
        toml_text
    );
    Ok(())
}

#[test]
fn grammar_covers_every_action_kind() {
    // A sanity check that the generator above is not vacuous.
    let specs = [
        ":502",
        "kind=zip:respond=429,header=Retry-After=5,body=slow",
        "module=golang.org/x/*:latency=200ms~50ms",
        ":bandwidth=256KiB/s,up=64KiB/s",
        ":stall=5s@1KiB,then=reset",
        "p=5%:reset@1000",
        ":truncate=50%",
        ":corrupt=4@1000",
        "host=*.golang.org:refuse=403",
        ":close",
        ":tls=5s+expired",
        ":login",
        "kind=zip:reset@50%,code=INTERNAL_ERROR",
    ];
    let mut kinds = Vec::new();
    for s in specs {
        let rule = parse_spec(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        kinds.push(rule.action.name());
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(parse_json_rule(&json).unwrap(), rule, "{s} via {json}");
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), 11, "every action kind is exercised: {kinds:?}");
    assert!(matches!(
        parse_spec(":close").unwrap().action,
        ActionSpec::CloseAfterConnect(_)
    ));
}
