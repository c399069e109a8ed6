//! Properties of replay keys.

use super::*;

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

/// Why the float round-trip properties above need serde_json's `float_roundtrip`,
/// pinned to the values that once broke them.
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
