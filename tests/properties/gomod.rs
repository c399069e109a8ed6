//! Properties of Go request decoding and escaping, GOPROXY and GOPRIVATE parsing.

use super::*;

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
