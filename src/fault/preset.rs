//! Named fault profiles (`--profile NAME`), written in the inline syntax so each
//! one doubles as an example of it.

use super::error::FaultError;
use super::rule::Rule;
use super::spec::parse_spec;

/// Preset names and one-line descriptions, for `--help` and error messages.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "flaky",
        "3% of requests answered 502, 2% answered 503, 2% of 2xx bodies reset halfway",
    ),
    (
        "slow",
        "300ms latency with 100ms normal jitter, downloads capped at 256KiB/s",
    ),
    (
        "jitter",
        "lognormal latency only: median 55ms, about 1 request in 100 above 300ms",
    ),
    (
        "timeout",
        "10% of requests stall 30s before the head and 10% of zips stall 30s halfway, then reset",
    ),
    ("offline", "every CONNECT refused with 502 Bad Gateway"),
    (
        "sumdb-down",
        "every checksum database request answered 502 (go stops, it does not fall back)",
    ),
    (
        "corrupt-zip",
        "one byte in the middle of every module zip inverted (go rejects the download)",
    ),
    (
        "bad-tls",
        "every intercepted TLS handshake presents an untrusted certificate",
    ),
];

fn specs(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "flaky" => &[
            "name=flaky-502,p=3%:502",
            "name=flaky-503,p=2%:503",
            "name=flaky-reset,p=2%,status=2xx:reset@50%",
        ],
        "slow" => &[
            "name=slow-latency:latency=300ms~100ms",
            "name=slow-bandwidth:bandwidth=256KiB/s",
        ],
        "jitter" => &["name=jitter:latency=lognormal:4/0.75"],
        "timeout" => &[
            "name=timeout-head,p=10%:stall=30s,then=reset",
            "name=timeout-body,kind=zip,p=10%:stall=30s@50%,then=reset",
        ],
        "offline" => &["name=offline:refuse=502"],
        "sumdb-down" => {
            &["name=sumdb-down,kind=sumdb-supported|sumdb-lookup|sumdb-tile|sumdb-latest:502"]
        }
        "corrupt-zip" => &["name=corrupt-zip,kind=zip,status=200:corrupt"],
        "bad-tls" => &["name=bad-tls:tls=untrusted"],
        _ => return None,
    })
}

/// The rules of a preset. Names are fixed (`flaky-502`, ...) so stats stay readable.
pub fn preset(name: &str) -> Result<Vec<Rule>, FaultError> {
    let specs = specs(name).ok_or_else(|| FaultError::UnknownPreset {
        name: name.to_string(),
        valid: PRESETS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    specs.iter().map(|s| parse_spec(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{ActionSpec, FaultEngine, Phase, RequestFacts};

    #[test]
    fn every_preset_parses_and_builds_an_engine() {
        for (name, description) in PRESETS {
            let rules = preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!rules.is_empty() && !description.is_empty());
            assert!(rules.iter().all(|r| !r.name.is_empty()));
            FaultEngine::new(rules, 1).unwrap();
        }
        // All presets together still have unique names.
        let all: Vec<_> = PRESETS
            .iter()
            .flat_map(|(n, _)| preset(n).unwrap())
            .collect();
        FaultEngine::new(all, 1).unwrap();
    }

    #[test]
    fn unknown_preset_lists_valid_ones() {
        let err = preset("chaos-monkey").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("unknown fault preset `chaos-monkey`"),
            "{text}"
        );
        for (name, _) in PRESETS {
            assert!(text.contains(name), "{text} lacks {name}");
        }
    }

    #[test]
    fn presets_do_what_they_say() {
        let offline = preset("offline").unwrap();
        assert_eq!(offline[0].phase(), Phase::Connect);
        let jitter = preset("jitter").unwrap();
        assert!(matches!(jitter[0].action, ActionSpec::Latency(_)));
        let slow = preset("slow").unwrap();
        assert!(slow.iter().all(|r| r.phase() == Phase::Request));

        // flaky: about 3% + 2% answered over many requests.
        let mut e = FaultEngine::new(preset("flaky").unwrap(), 2024).unwrap();
        let facts = RequestFacts {
            host: "proxy.golang.org".into(),
            method: "GET".into(),
            ..RequestFacts::default()
        };
        let answered = (0..10_000)
            .filter(|_| !e.decide(Phase::Request, &facts).is_empty())
            .count();
        assert!((400..600).contains(&answered), "{answered}");
    }
}
