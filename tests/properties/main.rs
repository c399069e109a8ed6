//! Property tests of the pure layers: Go request decoding and escaping, GOPROXY and
//! GOPRIVATE parsing, fault rule parsing and serialisation, trace entries and the journal
//! reader, and replay keys, one file per module. Every property is bounded (`cases`, no
//! persistence files).

#[path = "../common/mod.rs"]
mod common;

mod fault;
mod gomod;
mod replay;
mod trace;

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
