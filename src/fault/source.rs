//! Rules from text: TOML rule files (errors carry file, line, column and field) and
//! JSON bodies for the admin API.
//!
//! ```toml
//! seed = 42                      # optional; `--seed` wins over it
//!
//! [[rule]]
//! name = "zip-502"               # optional; unnamed rules become rule-N
//! match = { host = "proxy.golang.org", kind = ["zip", "mod"] }
//! probability = 0.1              # or "10%"
//! respond = { status = 502 }
//!
//! [[rule]]
//! match.module = "golang.org/x/*"
//! latency = { fixed_ms = 200, jitter = { normal = { mean_ms = 0, stddev_ms = 50 } } }
//! ```

use serde::{Deserialize, Serialize};
use toml_edit::{ImDocument, Item, TableLike};

use super::error::{FaultError, RuleError};
use super::rule::{RawRule, Rule};

/// The content of a rules file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

impl RuleFile {
    /// Writes the rules back in the file format (e.g. to save what the admin API changed).
    pub fn to_toml(&self) -> Result<String, FaultError> {
        toml::to_string(self).map_err(|e| FaultError::Toml {
            file: "(output)".to_string(),
            line: 0,
            column: 0,
            field: None,
            message: e.to_string(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// Parses a rules file. `file` is only used to name the file in errors; the caller
/// reads it (this module does no IO).
pub fn parse_toml(text: &str, file: &str) -> Result<RuleFile, FaultError> {
    let error = |at: usize, field: Option<String>, message: String| {
        let (line, column) = line_col(text, at);
        FaultError::Toml {
            file: file.to_string(),
            line,
            column,
            field,
            message,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        // toml points at the offending value (or the unknown key); the document's
        // spans say which key that is.
        let at = e.span().map_or(0, |s| s.start);
        let field = ImDocument::parse(text)
            .ok()
            .and_then(|doc| field_at(doc.as_table(), at));
        error(at, field, e.message().trim_end().to_string())
    })?;
    let mut rules = Vec::with_capacity(raw.rule.len());
    for (i, raw_rule) in raw.rule.into_iter().enumerate() {
        let label = if raw_rule.name.is_empty() {
            format!("rule #{}", i + 1)
        } else {
            format!("rule #{} '{}'", i + 1, raw_rule.name)
        };
        let rule = Rule::try_from(raw_rule)
            .and_then(|rule| rule.validate().map(|()| rule))
            .map_err(|e: RuleError| {
                let at = ImDocument::parse(text)
                    .ok()
                    .and_then(|doc| rule_field_start(doc.as_table(), i, e.field.as_deref()))
                    .unwrap_or(0);
                error(at, e.field, format!("in {label}: {}", e.message))
            })?;
        rules.push(rule);
    }
    Ok(RuleFile {
        seed: raw.seed,
        rules,
    })
}

/// Parses a JSON array of rules (the body of `PUT /faults`).
pub fn parse_json_rules(text: &str) -> Result<Vec<Rule>, FaultError> {
    let rules: Vec<Rule> = serde_json::from_str(text).map_err(json_error)?;
    for (i, rule) in rules.iter().enumerate() {
        rule.validate_in_list(i)?;
    }
    Ok(rules)
}

/// Parses one JSON rule (the body of `POST /faults`).
pub fn parse_json_rule(text: &str) -> Result<Rule, FaultError> {
    let rule: Rule = serde_json::from_str(text).map_err(json_error)?;
    rule.validate_in_list(0)?;
    Ok(rule)
}

fn json_error(e: serde_json::Error) -> FaultError {
    let mut message = e.to_string();
    // serde_json appends the position, which the variant already carries.
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    FaultError::Json {
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted key (relative to its `[[rule]]`, e.g. `match.kind`) whose key or value
/// holds byte `at`, from the document's own spans.
fn field_at(root: &dyn TableLike, at: usize) -> Option<String> {
    let mut path = Vec::new();
    if !path_at(root, at, &mut path) {
        return None;
    }
    // `rule[3].match.kind` -> `match.kind`: the message already names the rule.
    if path.first().is_some_and(|p| p.starts_with("rule[")) && path.len() > 1 {
        path.remove(0);
    }
    Some(path.join("."))
}

fn path_at(table: &dyn TableLike, at: usize, path: &mut Vec<String>) -> bool {
    let holds = |span: Option<std::ops::Range<usize>>| span.is_some_and(|s| s.contains(&at));
    for (name, _) in table.iter() {
        let Some((key, item)) = table.get_key_value(name) else {
            continue;
        };
        if holds(key.span()) {
            path.push(name.to_string());
            return true;
        }
        if let Item::ArrayOfTables(tables) = item {
            for (i, t) in tables.iter().enumerate() {
                path.push(format!("{name}[{i}]"));
                if path_at(t, at, path) || holds(t.span()) {
                    return true;
                }
                path.pop();
            }
            continue;
        }
        path.push(name.to_string());
        if item.as_table_like().is_some_and(|t| path_at(t, at, path)) || holds(item.span()) {
            return true;
        }
        path.pop();
    }
    false
}

/// Where a rule-level error points: the deepest key of `field` (`latency.jitter`)
/// found in rule `index`, else the rule's own `[[rule]]` header.
fn rule_field_start(root: &dyn TableLike, index: usize, field: Option<&str>) -> Option<usize> {
    let rule = root.get("rule")?.as_array_of_tables()?.get(index)?;
    let mut at = rule.span().map(|s| s.start);
    let mut table: &dyn TableLike = rule;
    for seg in field.into_iter().flat_map(|f| f.split('.')) {
        let Some((key, item)) = table.get_key_value(seg) else {
            break;
        };
        at = key.span().map(|s| s.start).or(at);
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::rule::{ActionSpec, CloseSpec, GoKind, Jitter, StatusPattern};

    const GOOD: &str = r#"
seed = 42

[[rule]]
name = "zip-502"
match = { host = "proxy.golang.org", kind = ["zip", "mod"], status = ["5xx", 404] }
probability = "10%"
first = 3
respond = { status = 502, headers = { "Retry-After" = "1" } }

[[rule]]
match.module = "golang.org/x/*"
latency = { fixed_ms = "200ms", jitter = { normal = { mean_ms = 0, stddev_ms = 50 } } }

[[rule]]
name = "cap"
[rule.bandwidth]
down_bytes_per_sec = "256KiB/s"

[[rule]]
name = "offline"
close_after_connect = true

[[rule]]
name = "cut"
truncate = { fraction = "50%" }
"#;

    #[test]
    fn parses_a_full_file() {
        let f = parse_toml(GOOD, "faults.toml").unwrap();
        assert_eq!(f.seed, Some(42));
        assert_eq!(f.rules.len(), 5);
        let r = &f.rules[0];
        assert_eq!(r.name, "zip-502");
        assert_eq!(r.when.kind, vec![GoKind::Zip, GoKind::Mod]);
        assert_eq!(
            r.when.status,
            vec![StatusPattern::Class(5), StatusPattern::Code(404)]
        );
        assert_eq!(r.select.probability.get(), 0.1);
        assert_eq!(r.select.first, Some(3));
        match &f.rules[1].action {
            ActionSpec::Latency(l) => {
                assert_eq!(l.fixed_ms, 200);
                assert_eq!(
                    l.jitter,
                    Jitter::Normal {
                        mean_ms: 0.0,
                        stddev_ms: 50.0
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(f.rules[1].name.is_empty(), "named later, by the engine");
        match &f.rules[2].action {
            ActionSpec::Bandwidth(b) => assert_eq!(b.down_bytes_per_sec, Some(262_144)),
            other => panic!("{other:?}"),
        }
        assert_eq!(f.rules[3].action, ActionSpec::CloseAfterConnect(CloseSpec));
    }

    #[test]
    fn round_trips_through_toml_and_json() {
        let f = parse_toml(GOOD, "faults.toml").unwrap();
        let text = f.to_toml().unwrap();
        let again = parse_toml(&text, "out.toml").unwrap();
        assert_eq!(f, again, "{text}");
        let json = serde_json::to_string(&f.rules).unwrap();
        assert_eq!(parse_json_rules(&json).unwrap(), f.rules);
    }

    fn err(text: &str) -> (usize, usize, Option<String>, String) {
        match parse_toml(text, "f.toml").unwrap_err() {
            FaultError::Toml {
                file,
                line,
                column,
                field,
                message,
            } => {
                assert_eq!(file, "f.toml");
                (line, column, field, message)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases: &[(&str, usize, Option<&str>, &str)] = &[
            (
                "[[rule]]\nname = \"a\"\nprobability = 1.5\nrespond = { status = 502 }\n",
                3,
                Some("probability"),
                "within 0..=1",
            ),
            (
                "[[rule]]\nname = \"a\"\nexplode = {}\n",
                3,
                Some("explode"),
                "unknown field `explode`",
            ),
            (
                "[[rule]]\nmatch = { kind = \"zipp\" }\nrespond = { status = 502 }\n",
                2,
                Some("match.kind"),
                "unknown kind `zipp`",
            ),
            (
                "[[rule]]\nrespond = { status = 700 }\n",
                2,
                Some("respond.status"),
                "100..=599",
            ),
            (
                "[[rule]]\nname = \"b\"\nbandwidth = { down_bytes_per_sec = 0 }\n",
                3,
                Some("bandwidth.down_bytes_per_sec"),
                "zero",
            ),
            (
                "[[rule]]\nname = \"ok\"\nreset = {}\n\n[[rule]]\nname = \"two\"\nrespond = { status = 502 }\nlatency = { fixed_ms = 5 }\n",
                8,
                Some("latency"),
                "rule #2 'two': rule has 2 actions",
            ),
            (
                "[[rule]]\nname = \"x\"\n",
                1,
                None,
                "no action",
            ),
            (
                "[[rule]]\nmatch.kind = \"zip\"\nrefuse_connect = {}\n",
                2,
                Some("match.kind"),
                "only the host is known",
            ),
            (
                "[[rule]]\nlatency = { jitter = { uniform = { min_ms = 5, max_ms = 1 } } }\n",
                2,
                Some("latency.jitter"),
                "min_ms <= max_ms",
            ),
            (
                "[[rule]]\nrespond = { status = 502 \n",
                2,
                None,
                "invalid inline table",
            ),
            ("seed = -1\n", 1, Some("seed"), "u64"),
            (
                "[[rule]]\nmatch = { status = [\"5xx\",\n  \"6xx\"] }\nreset = {}\n",
                3,
                Some("match.status"),
                "1xx..5xx",
            ),
            (
                "[[rule]]\nmatch = { kind = [] }\nreset = {}\n",
                2,
                Some("match.kind"),
                "leave the key out",
            ),
            (
                "[[rule]]\n[rule.latency.jitter.uniform]\nmin_ms = 1\nmax_ms = 2\nfoo = 3\n",
                5,
                Some("latency.jitter.uniform.foo"),
                "foo",
            ),
            (
                "[[rule]]\nreset = { fraction = 2 }\n",
                2,
                Some("reset.fraction"),
                "fraction must be within 0..=1, got 2",
            ),
            (
                "[[rule]]\nreset = { after_bytes = \"1KB\" }\n",
                2,
                Some("reset.after_bytes"),
                "use B, KiB, MiB or GiB",
            ),
            (
                "[[rule]]\nclose_after_connect = false\n",
                2,
                Some("close_after_connect"),
                "remove the key",
            ),
            ("bogus = 1\n", 1, Some("bogus"), "expected `seed` or `rule`"),
            (
                "[[rule]]\nname = \"x\"\nreset = { after_bytes = 1, fraction = 0.5 }\n",
                3,
                Some("reset"),
                "`reset` takes `after_bytes` or `fraction`, not both",
            ),
            (
                "[[rule]]\ntruncate = {}\n",
                2,
                Some("truncate"),
                "`truncate` needs `after_bytes` or `fraction`",
            ),
            (
                "[[rule]]\nname = \"a\"\n\n[[rule]]\nname = \"b\"\n[rule.stall]\nms = \"1s\"\nfraction = \"150%\"\n",
                8,
                Some("stall.fraction"),
                "within 0..=1",
            ),
            (
                "[[rule]]\nname = \"up\"\nmatch.status = 200\n\n[rule.bandwidth]\nup_bytes_per_sec = \"1KiB\"\n",
                6,
                Some("bandwidth.up_bytes_per_sec"),
                "request body is sent before",
            ),
        ];
        for &(text, line, field, want) in cases {
            let (got_line, column, got_field, message) = err(text);
            assert!(message.contains(want), "{message:?} lacks {want:?}");
            assert_eq!(got_line, line, "{message}");
            assert!(column >= 1);
            assert_eq!(got_field.as_deref(), field, "{message}");
        }
        let shown = parse_toml(cases[0].0, "faults.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            shown,
            "faults.toml:3:15: `probability` must be within 0..=1, got 1.5"
        );
    }

    #[test]
    fn json_errors_have_positions() {
        let e = parse_json_rule(r#"{"respond": {"status": 502}, "probability": 3}"#).unwrap_err();
        assert!(
            matches!(&e, FaultError::Json { line: 1, message, .. } if message.contains("within 0..=1")),
            "{e}"
        );
        let e = parse_json_rules("[{}]").unwrap_err();
        assert!(e.to_string().contains("no action"), "{e}");
        let r = parse_json_rule(r#"{"name":"x","match":{"kind":"zip"},"corrupt":{}}"#).unwrap();
        assert_eq!(r.name, "x");
    }

    #[test]
    fn random_rule_files_never_panic() {
        use crate::fault::{FaultEngine, Phase, RequestFacts, Rng};
        let keys = [
            "name",
            "probability",
            "first",
            "every",
            "after",
            "match",
            "match.kind",
            "match.status",
            "respond",
            "latency",
            "bandwidth",
            "stall",
            "reset",
            "truncate",
            "corrupt",
            "refuse_connect",
            "close_after_connect",
            "tls",
            "bogus",
        ];
        let values = [
            "1.5",
            "-1",
            "0",
            "3",
            "\"x\"",
            "\"50%\"",
            "{}",
            "[]",
            "true",
            "false",
            "{ status = 502 }",
            "{ status = 99 }",
            "{ fraction = 0.5 }",
            "{ fraction = 2 }",
            "{ after_bytes = \"1KiB\" }",
            "{ down_bytes_per_sec = 0 }",
            "{ up_bytes_per_sec = 10 }",
            "{ fixed_ms = 5, jitter = { lognormal = { mu = 30, sigma = 1 } } }",
            "{ jitter = { normal = { mean_ms = -5, stddev_ms = 1e300 } } }",
            "{ cert = \"expired\" }",
            "{ ms = \"1s\", then = \"reset\" }",
            "[\"zip\", \"mod\"]",
            "\"5xx\"",
            "{ offset = 18446744073709551615, count = 4096 }",
        ];
        let mut rng = Rng::new(5);
        let facts = RequestFacts {
            host: "proxy.golang.org".into(),
            method: "GET".into(),
            go_kind: Some("zip".into()),
            status: Some(503),
            content_length: Some(10),
            ..RequestFacts::default()
        };
        let (mut parsed, mut decided) = (0, 0);
        for _ in 0..5_000 {
            let mut text = String::from("[[rule]]\n");
            for _ in 0..1 + rng.below(4) {
                let key = keys[rng.below(keys.len() as u64) as usize];
                let value = values[rng.below(values.len() as u64) as usize];
                text.push_str(&format!("{key} = {value}\n"));
            }
            if let Ok(file) = parse_toml(&text, "fuzz.toml") {
                parsed += 1;
                if let Ok(mut engine) = FaultEngine::new(file.rules, 1) {
                    for phase in [Phase::Connect, Phase::Tls, Phase::Request, Phase::Response] {
                        for d in engine.decide(phase, &facts) {
                            decided += 1;
                            let _ = d.describe();
                        }
                    }
                }
            }
        }
        // The generator must also reach valid files, or it tests only the parser.
        assert!(
            parsed > 20 && decided > 10,
            "{parsed} parsed, {decided} decisions"
        );
    }

    #[test]
    fn line_col_is_safe_on_any_offset() {
        assert_eq!(line_col("", 5), (1, 1));
        assert_eq!(line_col("é\nab", 1), (1, 1));
        assert_eq!(line_col("é\nab", 4), (2, 2));
    }
}
