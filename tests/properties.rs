//! Property tests of the pure layers: Go request decoding and escaping, GOPROXY and
//! GOPRIVATE parsing, fault rule parsing and serialisation, trace entries and the journal
//! reader, and replay keys. Every property is bounded (`cases`, no persistence files).

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::TempDir;
use modscope::exchange::{
    BodyFacts, CertFacts, ClientTls, Exchange, ExchangeError, FaultFacts, PhaseTimes, RequestFacts,
    ResponseFacts, TlsFacts, UpstreamTls,
};
use modscope::fault::{parse_json_rule, parse_spec, parse_toml, ActionSpec, Phase, Rule, RuleFile};
use modscope::gomod::{
    classify, escape_path, escape_version, match_prefix_patterns, parse_goproxy, unescape_path,
    unescape_version, ProxyTarget,
};
use modscope::replay::RequestKey;
use modscope::trace::{
    build_entry, load_trace, validate_har_1_2, BodyContent, BuildOptions, Entry, EntryBodies, Har,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// Bounded runs that never write `proptest-regressions/` files into the source tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// Picks one of a fixed list of strings.
fn one_of(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(items).prop_map(str::to_string)
}

// ---------------------------------------------------------------------------------------
// gomod
// ---------------------------------------------------------------------------------------

/// Pieces that steer `classify` into its interesting branches.
const URL_PIECES: &[&str] = &[
    "@v",
    "@latest",
    "list",
    "v1.0.0.zip",
    "v1.0.0.info",
    "v1.0.0.mod",
    "v0.0.0-20240101000000-abcdef123456.info",
    "!azure",
    "%21azure",
    "%2",
    "%zz",
    "%",
    "!",
    "golang.org",
    "x",
    "mod",
    "toolchain",
    "go1.22.0.linux-amd64.zip",
    "v0.0.1-go1.22.0.linux-amd64.zip",
    "lookup",
    "golang.org/x/mod@v0.14.0",
    "tile",
    "8",
    "0",
    "data",
    "001",
    "x001.p",
    "5",
    "latest",
    "supported",
    "sumdb",
    "sum.golang.org",
    "info",
    "refs",
    "git-upload-pack",
    "info/refs?service=git-upload-pack",
    "repo.git",
    "..",
    ".",
    "",
    "é",
    "ß",
    "Ａ",
    "\u{0}",
    "?go-get=1",
    "?",
    "#frag",
    ";",
    " ",
    "@",
    ":",
    "[",
    "]",
    "//",
];

fn url_shaped() -> impl Strategy<Value = String> {
    (
        one_of(&[
            "https://", "http://", "HTTPS://", "ftp://", "", "https:/", "//",
        ]),
        one_of(&[
            "proxy.golang.org",
            "sum.golang.org",
            "user:pw@proxy.golang.org",
            "[::1]",
            "[::1]:8443",
            "127.0.0.1:443",
            "example.com:99999",
            "example.com:",
            "goproxy.io",
            "artifactory.corp:8081",
            "",
            "é.example",
            "[",
            "a@b@c",
        ]),
        proptest::collection::vec(proptest::sample::select(URL_PIECES), 0..10),
        prop_oneof![
            Just(String::new()),
            "[?&=a-z0-9%!]{0,12}".prop_map(|q| format!("?{q}"))
        ],
    )
        .prop_map(|(scheme, host, segs, query)| format!("{scheme}{host}/{}{query}", segs.join("/")))
}

fn bases() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            one_of(&[
                "https://proxy.golang.org",
                "https://proxy.golang.org/",
                "https://artifactory.corp:8081/api/go/remote",
                "https://sum.golang.org",
                "https://sum.golang.org/lookup",
                "http://[::1]:8443",
                "",
                "/",
                "https://",
                "direct",
            ]),
            any::<String>(),
        ],
        0..4,
    )
}

/// Module-path-like strings: the characters `escape_path` accepts, mixed case.
fn module_path() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._~/-]{1,40}"
}

/// Version-like strings: the file-name characters `escape_version` accepts, no '/'.
fn version_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "v[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[a-zA-Z0-9.]{1,12})?(\\+[a-zA-Z0-9.]{1,8})?",
        "[a-zA-Z0-9._~+#$%&(),=@\\[\\]^{} -]{1,30}",
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn classify_never_panics_on_arbitrary_strings(
        method in any::<String>(),
        url in any::<String>(),
        bases in bases(),
    ) {
        let _ = classify(&method, &url, &bases);
    }

    #[test]
    fn classify_never_panics_on_url_shaped_strings(
        method in one_of(&["GET", "POST", "HEAD", "get", ""]),
        url in url_shaped(),
        bases in bases(),
        cut in 0usize..64,
    ) {
        let _ = classify(&method, &url, &bases);
        // A known base that is a (char-boundary) prefix of the URL itself.
        let mut at = cut.min(url.len());
        while !url.is_char_boundary(at) {
            at -= 1;
        }
        let own = vec![url[..at].to_string()];
        let got = classify(&method, &url, &own);
        // Whatever was decoded must serialise (it is embedded in every trace entry).
        prop_assert!(serde_json::to_value(&got).is_ok(), "{got:?} does not serialise");
    }

    #[test]
    fn escape_path_round_trips_and_is_lower_case(p in module_path()) {
        let escaped = escape_path(&p).map_err(|e| TestCaseError::fail(format!("escape_path({p:?}): {e}")))?;
        prop_assert!(
            !escaped.bytes().any(|b| b.is_ascii_uppercase()),
            "escape_path({p:?}) = {escaped:?} still has upper case"
        );
        prop_assert_eq!(unescape_path(&escaped), Ok(p.clone()), "round trip of {:?} via {:?}", p, escaped);
    }

    #[test]
    fn escape_version_round_trips_and_is_lower_case(v in version_like()) {
        let escaped = escape_version(&v).map_err(|e| TestCaseError::fail(format!("escape_version({v:?}): {e}")))?;
        prop_assert!(
            !escaped.bytes().any(|b| b.is_ascii_uppercase()),
            "escape_version({v:?}) = {escaped:?} still has upper case"
        );
        prop_assert_eq!(unescape_version(&escaped), Ok(v.clone()), "round trip of {:?} via {:?}", v, escaped);
    }

    #[test]
    fn unescape_is_total_and_its_successes_escape_back(
        s in prop_oneof![any::<String>(), "[a-zA-Z0-9!./_~ -]{0,24}"],
    ) {
        if let Ok(p) = unescape_path(&s) {
            prop_assert_eq!(escape_path(&p), Ok(s.clone()), "unescape_path({:?}) = {:?}", s, p);
        }
        if let Ok(v) = unescape_version(&s) {
            prop_assert_eq!(escape_version(&v), Ok(s.clone()), "unescape_version({:?}) = {:?}", s, v);
        }
        let _ = escape_path(&s);
        let _ = escape_version(&s);
    }

    #[test]
    fn parse_goproxy_never_panics_and_stops_at_direct_or_off(
        value in prop_oneof![
            any::<String>(),
            "[a-z.:/|, ]{0,40}",
            proptest::collection::vec(
                one_of(&["direct", "off", "https://proxy.golang.org", "goproxy.io", "/abs/path",
                         "file:///tmp/x", "", " ", "http://[::1]:1/", "é", "x:/y"]),
                0..6,
            )
            .prop_flat_map(|items| {
                let n = items.len();
                (Just(items), proptest::collection::vec(one_of(&[",", "|"]), n))
            })
            .prop_map(|(items, seps)| {
                items.iter().zip(seps).map(|(i, s)| format!("{i}{s}")).collect::<String>()
            }),
        ],
    ) {
        let list = parse_goproxy(&value);
        for (i, entry) in list.iter().enumerate() {
            if matches!(entry.target, ProxyTarget::Direct | ProxyTarget::Off) {
                prop_assert_eq!(i + 1, list.len(), "entries after direct/off in {:?}: {:?}", value, list);
            }
        }
    }

    #[test]
    fn match_prefix_patterns_never_panics(
        globs in prop_oneof![any::<String>(), "[a-z/*?\\[\\]\\\\^,.-]{0,24}"],
        target in prop_oneof![any::<String>(), "[a-z/.-]{0,24}"],
    ) {
        let _ = match_prefix_patterns(&globs, &target);
    }

    #[test]
    fn a_module_path_matches_itself_and_its_sub_paths(
        path in "[a-z0-9]{1,8}(\\.[a-z]{2,3})?(/[a-z0-9._-]{1,8}){0,3}",
        sub in "[a-z0-9]{1,8}",
    ) {
        prop_assert!(match_prefix_patterns(&path, &path), "{path} should match itself");
        let deeper = format!("{path}/{sub}");
        prop_assert!(match_prefix_patterns(&path, &deeper), "{path} should match {deeper}");
        let other = format!("x{path}");
        prop_assert!(!match_prefix_patterns(&path, &other), "{path} must not match {other}");
    }
}

// ---------------------------------------------------------------------------------------
// fault rules
// ---------------------------------------------------------------------------------------

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
    assert_eq!(kinds.len(), 10, "every action kind is exercised: {kinds:?}");
    assert!(matches!(
        parse_spec(":close").unwrap().action,
        ActionSpec::CloseAfterConnect
    ));
}

// ---------------------------------------------------------------------------------------
// trace
// ---------------------------------------------------------------------------------------

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
                    certificates,
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
        |(method, url, http_version, headers, body)| RequestFacts {
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
            ExchangeError {
                phase,
                kind,
                message,
            }
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

// ---------------------------------------------------------------------------------------
// replay
// ---------------------------------------------------------------------------------------

fn query_pair() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}=[a-z0-9%.]{0,6}",
        "[a-z]{1,6}",
        "=[a-z]{0,3}",
        one_of(&["go-get=1", "a=1", "a=2", "a", "a=", "%20=%20"]),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn request_key_never_panics(
        method in any::<String>(),
        url in prop_oneof![any::<String>(), url_shaped()],
        ignore in proptest::collection::vec(any::<String>(), 0..3),
    ) {
        if let Some(key) = RequestKey::from_url(&method, &url, &ignore) {
            let _ = key.display();
            prop_assert!(key.scheme == "http" || key.scheme == "https", "{url:?} gave scheme {:?}", key.scheme);
        }
    }

    #[test]
    fn request_keys_ignore_query_order(
        scheme in one_of(&["https", "http", "HTTPS"]),
        host in "[a-zA-Z0-9.-]{1,16}",
        port in proptest::option::of(1u16..=u16::MAX),
        path in "(/[a-zA-Z0-9@!._~%-]{0,8}){0,4}",
        pairs in proptest::collection::vec(query_pair(), 0..6)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        ignored in proptest::collection::vec("[a-z]{1,6}", 0..2),
        method in one_of(&["GET", "get", "HEAD"]),
    ) {
        let (original, shuffled) = pairs;
        let authority = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let url = |q: &[String]| {
            if q.is_empty() {
                format!("{scheme}://{authority}{path}")
            } else {
                format!("{scheme}://{authority}{path}?{}", q.join("&"))
            }
        };
        let a = RequestKey::from_url(&method, &url(&original), &ignored);
        let b = RequestKey::from_url(&method, &url(&shuffled), &ignored);
        prop_assert!(a.is_some(), "{} should give a key", url(&original));
        prop_assert_eq!(&a, &b, "query order changed the key: {} vs {}", url(&original), url(&shuffled));
        // Ignored parameters do not count at all.
        let kept: Vec<String> = original
            .iter()
            .filter(|p| !ignored.iter().any(|i| p.split('=').next() == Some(i.as_str())))
            .cloned()
            .collect();
        let c = RequestKey::from_url(&method, &url(&kept), &ignored);
        prop_assert_eq!(&a, &c, "ignored parameters changed the key");
        let key = a.unwrap();
        prop_assert_eq!(key.port, port.unwrap_or(if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 }));
        prop_assert_eq!(key.method, method.to_ascii_uppercase());
    }
}

/// The root cause of the two ignored round-trip properties above, pinned to one value.
#[test]
fn serde_json_parses_floats_like_std() {
    for text in ["0.9367103725694265", "8.666092484161857e83"] {
        let std: f64 = text.parse().unwrap();
        let json: f64 = serde_json::from_str(text).unwrap();
        assert_eq!(
            json.to_bits(),
            std.to_bits(),
            "serde_json read {text} as {json:e}, std as {std:e}; enable serde_json's `float_roundtrip` feature"
        );
    }
}
