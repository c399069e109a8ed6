//! The fault engine: holds the rules, their counters and random streams, and turns the
//! facts of one exchange at one phase into concrete decisions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::action::{describe, Action};
use super::error::FaultError;
use super::rng::{digest, Rng};
use super::rule::{ActionSpec, Jitter, Match, Phase, Rule};
use super::shaping::{ByteSpan, CorruptPlan};
use super::values::MAX_DELAY_MS;
use crate::net::{glob_match, host_match, module_match};

/// What the shell knows about an exchange when it asks. At the Connect and Tls phases
/// only `host` and `port` are meaningful; `status` and `content_length` only at the
/// Response phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFacts {
    pub host: String,
    pub port: u16,
    pub method: String,
    /// URL path without the query.
    pub path: String,
    /// `gomod` kind (`zip`, `sumdb-lookup`, ...); None counts as `other`.
    pub go_kind: Option<String>,
    pub module: Option<String>,
    pub version: Option<String>,
    /// Status of the real upstream response.
    pub status: Option<u16>,
    /// Content-Length of the upstream response, when declared. Rules that place a
    /// fault by fraction, and `corrupt` without an offset, need it and are skipped
    /// (not counted) when it is unknown.
    pub content_length: Option<u64>,
}

impl RequestFacts {
    /// Facts for the Connect and Tls phases.
    pub fn connect(host: impl Into<String>, port: u16) -> RequestFacts {
        RequestFacts {
            host: host.into(),
            port,
            method: "CONNECT".to_string(),
            ..RequestFacts::default()
        }
    }
}

impl Match {
    /// Whether every matcher that is set holds for these facts.
    pub fn matches(&self, facts: &RequestFacts) -> bool {
        if let Some(p) = &self.host {
            if !host_match(p, &facts.host) {
                return false;
            }
        }
        if !self.kind.is_empty() {
            // A request gomod could not classify is, for matching, of kind `other`.
            let kind = facts.go_kind.as_deref().unwrap_or("other");
            if !self.kind.iter().any(|k| k.as_str() == kind) {
                return false;
            }
        }
        if let Some(p) = &self.module {
            match &facts.module {
                Some(m) if module_match(p, m) => {}
                _ => return false,
            }
        }
        if let Some(p) = &self.version {
            match &facts.version {
                Some(v) if glob_match(p, v) => {}
                _ => return false,
            }
        }
        if !self.method.is_empty()
            && !self
                .method
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&facts.method))
        {
            return false;
        }
        if let Some(p) = &self.path {
            if !glob_match(p, &facts.path) {
                return false;
            }
        }
        if !self.status.is_empty() {
            match facts.status {
                Some(s) if self.status.iter().any(|p| p.matches(s)) => {}
                _ => return false,
            }
        }
        true
    }
}

/// One action the shell must carry out, and the rule it came from (for `_fault`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub rule: String,
    #[serde(flatten)]
    pub action: Action,
}

impl Decision {
    pub fn describe(&self) -> String {
        describe(&self.action)
    }
}

/// The `_fault {rule, action}` fields of a trace entry for everything that shaped one
/// exchange (all phases). The trace has room for one of each, so several decisions
/// are joined (`lat+r1`, `latency 50ms; respond 502`) rather than dropped.
pub fn trace_summary(decisions: &[Decision]) -> Option<(String, String)> {
    if decisions.is_empty() {
        return None;
    }
    let rules: Vec<&str> = decisions.iter().map(|d| d.rule.as_str()).collect();
    let actions: Vec<String> = decisions.iter().map(Decision::describe).collect();
    Some((rules.join("+"), actions.join("; ")))
}

/// Counters of one rule, for `GET /stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleStats {
    pub name: String,
    pub action: String,
    pub phase: Phase,
    /// Exchanges whose facts matched.
    pub matched: u64,
    /// Times the rule's action was handed to the shell.
    pub applied: u64,
    /// Times the rule was selected but an earlier rule had already claimed the
    /// terminal slot (or the same shaping action) for that exchange.
    pub shadowed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    pub seed: u64,
    pub rules: Vec<RuleStats>,
    /// Applied actions summed per action key.
    pub actions: BTreeMap<String, u64>,
}

/// Bounds the per-rule memory of request occurrences in a long-running proxy; past
/// it the counts restart, which only changes the draws for repeated requests.
const MAX_TRACKED_REQUESTS: usize = 1 << 20;

#[derive(Debug, Clone)]
struct Slot {
    rule: Rule,
    phase: Phase,
    /// How many times each request identity has matched, so a retry of the same URL
    /// gets a fresh draw while the first attempt's draw stays fixed.
    seen: HashMap<u64, u64>,
    matched: u64,
    applied: u64,
    shadowed: u64,
}

impl Slot {
    fn new(rule: Rule) -> Slot {
        Slot {
            phase: rule.phase(),
            rule,
            seen: HashMap::new(),
            matched: 0,
            applied: 0,
            shadowed: 0,
        }
    }

    fn occurrence(&mut self, key: u64) -> u64 {
        if self.seen.len() >= MAX_TRACKED_REQUESTS && !self.seen.contains_key(&key) {
            self.seen.clear();
        }
        let n = self.seen.entry(key).or_insert(0);
        *n += 1;
        *n
    }
}

/// Identity of a request for random draws: method, host, port and path, the parts
/// that are the same each time go asks for the same thing.
fn request_key(facts: &RequestFacts) -> u64 {
    digest(&[
        facts.method.to_ascii_uppercase().as_bytes(),
        facts
            .host
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .as_bytes(),
        &facts.port.to_le_bytes(),
        facts.path.as_bytes(),
    ])
}

/// Rules plus per-rule counters. Random draws (probability, jitter, corrupt offsets)
/// are keyed by seed, rule name, request identity and occurrence, so a seed picks the
/// same victims whatever order parallel requests arrive in, and adding or removing a
/// rule leaves the other rules' choices unchanged. Counting gates (first, every,
/// after) are, by nature, about arrival order.
#[derive(Debug, Clone)]
pub struct FaultEngine {
    seed: u64,
    slots: Vec<Slot>,
}

impl FaultEngine {
    /// Validates and names the rules (`rule-N` for unnamed ones, N = position from 1).
    pub fn new(rules: Vec<Rule>, seed: u64) -> Result<FaultEngine, FaultError> {
        let rules = prepare_rules(rules)?;
        Ok(FaultEngine {
            seed,
            slots: rules.into_iter().map(Slot::new).collect(),
        })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Lets the shell skip work: e.g. with no Tls rules it never needs to consult the
    /// engine during handshakes.
    pub fn has_rules_for(&self, phase: Phase) -> bool {
        self.slots.iter().any(|s| s.phase == phase)
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.slots.iter().map(|s| s.rule.clone()).collect()
    }

    /// Consults every rule of `phase`, in order. Matching rules advance their counter;
    /// of those selected, the first terminal one wins and shaping actions (latency,
    /// bandwidth, corrupt) combine, one of each kind. Decisions come back in rule order.
    pub fn decide(&mut self, phase: Phase, facts: &RequestFacts) -> Vec<Decision> {
        let mut out = Vec::new();
        let mut terminal_taken = false;
        let mut kinds_taken: HashSet<&'static str> = HashSet::new();
        let seed = self.seed;
        let key = request_key(facts);
        for slot in &mut self.slots {
            if slot.phase != phase
                || !slot.rule.when.matches(facts)
                || (slot.rule.action.needs_body_length() && facts.content_length.is_none())
            {
                continue;
            }
            slot.matched = slot.matched.saturating_add(1);
            let occurrence = slot.occurrence(key);
            let mut rng = Rng::keyed(
                seed,
                &[
                    slot.rule.name.as_bytes(),
                    &key.to_le_bytes(),
                    &occurrence.to_le_bytes(),
                ],
            );
            if !slot.rule.select.counts_in(slot.matched)
                || !rng.chance(slot.rule.select.probability.get())
            {
                continue;
            }
            let terminal = slot.rule.action.is_terminal();
            let kind = slot.rule.action.name();
            if (terminal && terminal_taken) || (!terminal && kinds_taken.contains(kind)) {
                slot.shadowed = slot.shadowed.saturating_add(1);
                continue;
            }
            if terminal {
                terminal_taken = true;
            } else {
                kinds_taken.insert(kind);
            }
            slot.applied = slot.applied.saturating_add(1);
            let action = concretize(&slot.rule, facts, &mut rng);
            out.push(Decision {
                rule: slot.rule.name.clone(),
                action,
            });
        }
        out
    }

    pub fn stats(&self) -> FaultStats {
        let mut actions = BTreeMap::new();
        let rules = self
            .slots
            .iter()
            .map(|s| {
                let action = s.rule.action.name();
                *actions.entry(action.to_string()).or_insert(0) += s.applied;
                RuleStats {
                    name: s.rule.name.clone(),
                    action: action.to_string(),
                    phase: s.phase,
                    matched: s.matched,
                    applied: s.applied,
                    shadowed: s.shadowed,
                }
            })
            .collect();
        FaultStats {
            seed: self.seed,
            rules,
            actions,
        }
    }

    /// Swaps in a new rule set with fresh counters; on error the old rules stay.
    pub fn replace_rules(&mut self, rules: Vec<Rule>) -> Result<(), FaultError> {
        let rules = prepare_rules(rules)?;
        self.slots = rules.into_iter().map(Slot::new).collect();
        Ok(())
    }

    /// Appends a rule (consulted after the existing ones) and returns its name.
    pub fn add_rule(&mut self, mut rule: Rule) -> Result<String, FaultError> {
        rule.validate().map_err(|e| FaultError::Rule {
            rule: rule.label(),
            field: e.field,
            message: e.message,
        })?;
        let taken: HashSet<&str> = self.slots.iter().map(|s| s.rule.name.as_str()).collect();
        if rule.name.is_empty() {
            rule.name = free_name(self.slots.len() + 1, &taken);
        } else if taken.contains(rule.name.as_str()) {
            return Err(FaultError::DuplicateName(rule.name));
        }
        let name = rule.name.clone();
        self.slots.push(Slot::new(rule));
        Ok(name)
    }

    pub fn remove_rule(&mut self, name: &str) -> Result<Rule, FaultError> {
        let index = self
            .slots
            .iter()
            .position(|s| s.rule.name == name)
            .ok_or_else(|| FaultError::UnknownRule(name.to_string()))?;
        Ok(self.slots.remove(index).rule)
    }

    /// Clears all counters (and request occurrences), so the engine behaves as if
    /// freshly built from the same rules and seed.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            *slot = Slot::new(slot.rule.clone());
        }
    }
}

/// Validates every rule, names the unnamed ones and refuses duplicate names, so a
/// bad update can be rejected before anything is replaced.
pub fn prepare_rules(mut rules: Vec<Rule>) -> Result<Vec<Rule>, FaultError> {
    for (i, rule) in rules.iter().enumerate() {
        rule.validate_in_list(i)?;
    }
    let mut taken: HashSet<String> = HashSet::new();
    for rule in &rules {
        if !rule.name.is_empty() && !taken.insert(rule.name.clone()) {
            return Err(FaultError::DuplicateName(rule.name.clone()));
        }
    }
    name_unnamed(&mut rules, &mut taken);
    Ok(rules)
}

/// Names each unnamed rule `rule-N`, N its position from 1, or the next free N when an
/// explicit name holds it. Returns how many names were tried, so a test can check that
/// the work stays linear in the number of rules (tens of thousands load at start-up).
fn name_unnamed(rules: &mut [Rule], taken: &mut HashSet<String>) -> usize {
    // Every name between an unnamed rule's position and the name it got is taken, so the
    // next unnamed rule can start after that name instead of probing the same run again.
    let mut next = 1;
    let mut tried = 0;
    for (i, rule) in rules.iter_mut().enumerate() {
        if !rule.name.is_empty() {
            continue;
        }
        next = next.max(i + 1);
        loop {
            tried += 1;
            let name = format!("rule-{next}");
            next += 1;
            if !taken.contains(&name) {
                taken.insert(name.clone());
                rule.name = name;
                break;
            }
        }
    }
    tried
}

fn free_name(mut n: usize, taken: &HashSet<&str>) -> String {
    loop {
        let name = format!("rule-{n}");
        if !taken.contains(name.as_str()) {
            return name;
        }
        n += 1;
    }
}

fn clamp_ms(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 0.0 {
        0
    } else {
        ms.round().min(MAX_DELAY_MS as f64) as u64
    }
}

/// Turns a rule's action into a concrete one, drawing from the rule's stream.
fn concretize(rule: &Rule, facts: &RequestFacts, rng: &mut Rng) -> Action {
    let len = facts.content_length;
    match &rule.action {
        ActionSpec::Respond(r) => {
            let mut headers: Vec<(String, String)> = Vec::new();
            if !r
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
            {
                // go prints text/plain bodies after `server response:`, which makes
                // the injected failure explain itself in the user's terminal.
                headers.push((
                    "content-type".to_string(),
                    "text/plain; charset=utf-8".to_string(),
                ));
            }
            headers.extend(r.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
            let body = r.body.clone().unwrap_or_else(|| {
                format!("modscope: injected {} by rule '{}'\n", r.status, rule.name)
            });
            Action::Respond {
                status: r.status.get(),
                headers,
                body,
            }
        }
        ActionSpec::LoginPage(l) => Action::Respond {
            status: l.status.get(),
            headers: vec![(
                "content-type".to_string(),
                "text/html; charset=utf-8".to_string(),
            )],
            body: LOGIN_PAGE.to_string(),
        },
        ActionSpec::Latency(l) => {
            let jitter = match l.jitter {
                Jitter::None => 0.0,
                Jitter::Uniform { min_ms, max_ms } => rng.between(min_ms, max_ms) as f64,
                Jitter::Normal { mean_ms, stddev_ms } => rng.normal(mean_ms, stddev_ms),
                Jitter::Lognormal { mu, sigma } => rng.lognormal(mu, sigma),
            };
            Action::Latency {
                ms: clamp_ms(l.fixed_ms as f64 + jitter),
            }
        }
        ActionSpec::Bandwidth(b) => Action::Bandwidth {
            down_bytes_per_sec: b.down_bytes_per_sec,
            up_bytes_per_sec: b.up_bytes_per_sec,
        },
        ActionSpec::Stall(s) => Action::Stall {
            ms: s.ms,
            then: s.then,
            after_bytes: s.at.map(|p| p.resolve(len)),
        },
        ActionSpec::Reset(r) => Action::Reset {
            after_bytes: r.at.map(|p| p.resolve(len)),
            h2_code: r.code,
        },
        ActionSpec::Truncate(t) => Action::Truncate {
            after_bytes: t.at.resolve(len),
        },
        ActionSpec::Corrupt(c) => Action::Corrupt {
            plan: corrupt_plan(c.offset, c.count, len, rng),
        },
        ActionSpec::RefuseConnect(r) => Action::RefuseConnect {
            status: r.status.get(),
        },
        ActionSpec::CloseAfterConnect(_) => Action::CloseAfterConnect,
        ActionSpec::Tls(t) => Action::Tls {
            stall_ms: t.stall_ms,
            cert: t.cert,
        },
    }
}

/// What a captive portal or an SSO gateway serves instead of the module: a login form.
const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n\
<body><h1>Sign in to continue</h1>\n\
<form method=\"post\" action=\"/login\"><input name=\"user\"><input name=\"password\" type=\"password\">\n\
<button>Sign in</button></form>\n<!-- injected by modscope (login_page) -->\n</body></html>\n";

/// An explicit offset flips `count` consecutive bytes from there. Otherwise `count`
/// distinct bytes are drawn from the middle half of the body, away from headers and
/// trailers (zip central directory, JSON braces) so the damage is to content.
fn corrupt_plan(offset: Option<u64>, count: u32, len: Option<u64>, rng: &mut Rng) -> CorruptPlan {
    let count = u64::from(count);
    if let Some(offset) = offset {
        return CorruptPlan {
            spans: vec![ByteSpan { offset, len: count }],
        };
    }
    let len = len.unwrap_or(0);
    if len == 0 {
        return CorruptPlan::default();
    }
    let start = len / 4;
    let region = (len / 2).max(1).min(len - start);
    if count >= region {
        return CorruptPlan {
            spans: vec![ByteSpan {
                offset: start,
                len: region,
            }],
        };
    }
    // Floyd's sampling: `count` distinct picks in `count` draws, whatever the region size.
    let mut picked = BTreeSet::new();
    for j in (region - count)..region {
        let t = rng.below(j + 1);
        if !picked.insert(t) {
            picked.insert(j);
        }
    }
    CorruptPlan::from_offsets(picked.into_iter().map(|o| start + o).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::rule::GoKind;
    use crate::fault::rule::{
        BandwidthSpec, CorruptSpec, LatencySpec, Match, RespondSpec, Selection, StatusPattern,
        TruncateSpec,
    };
    use crate::fault::shaping::corrupt_in_place;
    use crate::fault::values::{BodyPoint, Probability, Status};

    fn facts() -> RequestFacts {
        RequestFacts {
            host: "proxy.golang.org".into(),
            port: 443,
            method: "GET".into(),
            path: "/golang.org/x/mod/@v/v0.14.0.zip".into(),
            go_kind: Some("zip".into()),
            module: Some("golang.org/x/mod".into()),
            version: Some("v0.14.0".into()),
            status: Some(200),
            content_length: Some(1000),
        }
    }

    #[test]
    fn match_on_each_field() {
        let f = facts();
        let yes_no: Vec<(Match, Match)> = vec![
            (
                Match {
                    host: Some("*.golang.org".into()),
                    ..Match::default()
                },
                Match {
                    host: Some("sum.golang.org".into()),
                    ..Match::default()
                },
            ),
            (
                Match {
                    kind: vec![GoKind::Mod, GoKind::Zip],
                    ..Match::default()
                },
                Match {
                    kind: vec![GoKind::Info],
                    ..Match::default()
                },
            ),
            (
                Match {
                    module: Some("golang.org/x/*".into()),
                    ..Match::default()
                },
                Match {
                    module: Some("github.com/*".into()),
                    ..Match::default()
                },
            ),
            (
                Match {
                    version: Some("v0.*".into()),
                    ..Match::default()
                },
                Match {
                    version: Some("v0.14.1".into()),
                    ..Match::default()
                },
            ),
            (
                Match {
                    method: vec!["get".into()],
                    ..Match::default()
                },
                Match {
                    method: vec!["POST".into()],
                    ..Match::default()
                },
            ),
            (
                Match {
                    path: Some("*/@v/*.zip".into()),
                    ..Match::default()
                },
                Match {
                    path: Some("*/@v/list".into()),
                    ..Match::default()
                },
            ),
            (
                Match {
                    status: vec![StatusPattern::Class(2)],
                    ..Match::default()
                },
                Match {
                    status: vec![StatusPattern::Class(5), StatusPattern::Code(404)],
                    ..Match::default()
                },
            ),
        ];
        for (yes, no) in yes_no {
            assert!(yes.matches(&f), "{yes:?}");
            assert!(!no.matches(&f), "{no:?}");
        }
        assert!(Match::default().matches(&f));
    }

    #[test]
    fn missing_facts_do_not_match() {
        let f = RequestFacts {
            host: "example.com".into(),
            ..RequestFacts::default()
        };
        assert!(!Match {
            module: Some("*".into()),
            ..Match::default()
        }
        .matches(&f));
        assert!(!Match {
            version: Some("*".into()),
            ..Match::default()
        }
        .matches(&f));
        assert!(!Match {
            status: vec![StatusPattern::Class(2)],
            ..Match::default()
        }
        .matches(&f));
        // An unclassified request counts as kind `other`.
        assert!(Match {
            kind: vec![GoKind::Other],
            ..Match::default()
        }
        .matches(&f));
    }

    fn zip_facts() -> RequestFacts {
        RequestFacts {
            host: "proxy.golang.org".into(),
            port: 443,
            method: "GET".into(),
            path: "/golang.org/x/mod/@v/v0.14.0.zip".into(),
            go_kind: Some("zip".into()),
            module: Some("golang.org/x/mod".into()),
            version: Some("v0.14.0".into()),
            status: None,
            content_length: None,
        }
    }

    fn respond(status: u16) -> ActionSpec {
        ActionSpec::Respond(RespondSpec::status(status))
    }

    fn latency(fixed_ms: u64, jitter: Jitter) -> ActionSpec {
        ActionSpec::Latency(LatencySpec { fixed_ms, jitter })
    }

    fn named(name: &str, action: ActionSpec) -> Rule {
        Rule {
            name: name.into(),
            ..Rule::new(action)
        }
    }

    fn with_p(mut rule: Rule, p: f64) -> Rule {
        rule.select.probability = Probability::new(p).unwrap();
        rule
    }

    fn run(engine: &mut FaultEngine, n: usize) -> Vec<Vec<Decision>> {
        (0..n)
            .map(|_| engine.decide(Phase::Request, &zip_facts()))
            .collect()
    }

    #[test]
    fn same_seed_same_decisions_and_other_seed_differs() {
        let rules = vec![
            with_p(named("a", respond(502)), 0.3),
            with_p(
                named(
                    "b",
                    latency(
                        100,
                        Jitter::Normal {
                            mean_ms: 0.0,
                            stddev_ms: 40.0,
                        },
                    ),
                ),
                0.5,
            ),
        ];
        let mut one = FaultEngine::new(rules.clone(), 7).unwrap();
        let mut two = FaultEngine::new(rules.clone(), 7).unwrap();
        let mut other = FaultEngine::new(rules, 8).unwrap();
        let a = run(&mut one, 200);
        assert_eq!(a, run(&mut two, 200));
        assert_ne!(a, run(&mut other, 200));
        // reset() replays the same sequence.
        one.reset();
        assert_eq!(a, run(&mut one, 200));
        assert!(a.iter().any(|d| d.is_empty()));
        assert!(a.iter().any(|d| d.len() == 2));
    }

    #[test]
    fn victims_do_not_depend_on_arrival_order() {
        let rule = with_p(named("p", respond(502)), 0.2);
        let paths: Vec<String> = (0..300).map(|i| format!("/m{i}/@v/list")).collect();
        let victims = |order: Vec<&String>| -> BTreeSet<String> {
            let mut e = FaultEngine::new(vec![rule.clone()], 42).unwrap();
            order
                .into_iter()
                .filter(|p| {
                    let f = RequestFacts {
                        path: (*p).clone(),
                        ..zip_facts()
                    };
                    !e.decide(Phase::Request, &f).is_empty()
                })
                .cloned()
                .collect()
        };
        let forward = victims(paths.iter().collect());
        let backward = victims(paths.iter().rev().collect());
        let mut rng = Rng::new(3);
        let mut shuffled: Vec<&String> = paths.iter().collect();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.below(i as u64 + 1) as usize);
        }
        assert_eq!(forward, backward);
        assert_eq!(forward, victims(shuffled));
        assert!((30..90).contains(&forward.len()), "{}", forward.len());
        // A retry of a victim gets its own draw rather than the same answer forever.
        let mut e = FaultEngine::new(vec![rule.clone()], 42).unwrap();
        let f = RequestFacts {
            path: forward.iter().next().unwrap().clone(),
            ..zip_facts()
        };
        let retries = (0..50)
            .filter(|_| !e.decide(Phase::Request, &f).is_empty())
            .count();
        assert!(retries < 50, "{retries}");
    }

    #[test]
    fn rule_streams_are_independent_of_other_rules() {
        let a = with_p(named("a", respond(502)), 0.3);
        let noise = with_p(
            named(
                "noise",
                latency(
                    5,
                    Jitter::Uniform {
                        min_ms: 0,
                        max_ms: 9,
                    },
                ),
            ),
            0.5,
        );
        let mut alone = FaultEngine::new(vec![a.clone()], 1).unwrap();
        // `noise` comes first and never shadows `a` (latency is not terminal).
        let mut mixed = FaultEngine::new(vec![noise, a], 1).unwrap();
        let only_a = |ds: Vec<Vec<Decision>>| -> Vec<bool> {
            ds.iter().map(|d| d.iter().any(|x| x.rule == "a")).collect()
        };
        assert_eq!(only_a(run(&mut alone, 300)), only_a(run(&mut mixed, 300)));
    }

    #[test]
    fn first_every_after_counters() {
        let mut r = named("w", respond(503));
        r.select = Selection {
            probability: Probability::ALWAYS,
            first: Some(2),
            every: Some(2),
            after: 1,
        };
        let mut e = FaultEngine::new(vec![r], 0).unwrap();
        let fired: Vec<usize> = run(&mut e, 10)
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.is_empty())
            .map(|(i, _)| i + 1)
            .collect();
        // Skip match 1; window = matches 2,3; every 2nd of the window -> match 3.
        assert_eq!(fired, vec![3]);
        let s = e.stats();
        assert_eq!((s.rules[0].matched, s.rules[0].applied), (10, 1));
    }

    #[test]
    fn counters_advance_only_on_match() {
        let mut r = named("first", respond(502));
        r.when.kind = vec![crate::fault::GoKind::Info];
        r.select.first = Some(1);
        let mut e = FaultEngine::new(vec![r], 0).unwrap();
        assert!(run(&mut e, 5).iter().all(Vec::is_empty));
        let info = RequestFacts {
            go_kind: Some("info".into()),
            ..zip_facts()
        };
        assert_eq!(e.decide(Phase::Request, &info).len(), 1);
        assert!(e.decide(Phase::Request, &info).is_empty());
        assert_eq!(e.stats().rules[0].matched, 2);
    }

    #[test]
    fn first_terminal_wins_and_shaping_combines() {
        let rules = vec![
            named("lat", latency(50, Jitter::None)),
            named("r1", respond(502)),
            named("lat2", latency(999, Jitter::None)),
            named("r2", respond(503)),
            named(
                "bw",
                ActionSpec::Bandwidth(BandwidthSpec {
                    down_bytes_per_sec: Some(1000),
                    up_bytes_per_sec: None,
                }),
            ),
        ];
        let mut e = FaultEngine::new(rules, 0).unwrap();
        let d = e.decide(Phase::Request, &zip_facts());
        let got: Vec<(&str, String)> = d.iter().map(|d| (d.rule.as_str(), d.describe())).collect();
        assert_eq!(
            got,
            vec![
                ("lat", "latency 50ms".to_string()),
                ("r1", "respond 502".to_string()),
                ("bw", "bandwidth down 1000 B/s".to_string()),
            ]
        );
        let s = e.stats();
        let shadowed: Vec<u64> = s.rules.iter().map(|r| r.shadowed).collect();
        assert_eq!(shadowed, vec![0, 0, 1, 1, 0]);
        assert_eq!(s.actions["respond"], 1);
        assert_eq!(s.actions["latency"], 1);
    }

    #[test]
    fn phases_are_separate() {
        let mut status_rule = named("s", respond(500));
        status_rule.when.status = vec![StatusPattern::Code(404)];
        let rules = vec![
            named(
                "refuse",
                ActionSpec::RefuseConnect(crate::fault::rule::RefuseSpec {
                    status: Status::new(403).unwrap(),
                }),
            ),
            status_rule,
        ];
        let mut e = FaultEngine::new(rules, 0).unwrap();
        let c = e.decide(
            Phase::Connect,
            &RequestFacts::connect("proxy.golang.org", 443),
        );
        assert_eq!(c[0].action, Action::RefuseConnect { status: 403 });
        assert!(e.decide(Phase::Request, &zip_facts()).is_empty());
        let not_found = RequestFacts {
            status: Some(404),
            ..zip_facts()
        };
        let r = e.decide(Phase::Response, &not_found);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].describe(), "respond 500");
        let ok = RequestFacts {
            status: Some(200),
            ..zip_facts()
        };
        assert!(e.decide(Phase::Response, &ok).is_empty());
        assert!(e.has_rules_for(Phase::Connect));
        assert!(!e.has_rules_for(Phase::Tls));
    }

    #[test]
    fn default_body_names_the_rule() {
        let mut e = FaultEngine::new(vec![named("x", respond(502))], 0).unwrap();
        match &e.decide(Phase::Request, &zip_facts())[0].action {
            Action::Respond { body, headers, .. } => {
                assert_eq!(body, "modscope: injected 502 by rule 'x'\n");
                assert_eq!(headers[0].1, "text/plain; charset=utf-8");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fractions_need_a_length() {
        let rule = named(
            "t",
            ActionSpec::Truncate(TruncateSpec {
                at: BodyPoint::Fraction(0.5),
            }),
        );
        let mut e = FaultEngine::new(vec![rule], 0).unwrap();
        let no_len = RequestFacts {
            status: Some(200),
            ..zip_facts()
        };
        assert!(e.decide(Phase::Response, &no_len).is_empty());
        assert_eq!(e.stats().rules[0].matched, 0);
        let with_len = RequestFacts {
            content_length: Some(1001),
            ..no_len
        };
        let d = e.decide(Phase::Response, &with_len);
        assert_eq!(d[0].action, Action::Truncate { after_bytes: 500 });
    }

    #[test]
    fn corrupt_plans() {
        let mut rng = Rng::new(5);
        // Explicit offset: consecutive bytes.
        let p = corrupt_plan(Some(10), 3, None, &mut rng);
        assert_eq!(p.spans, vec![ByteSpan { offset: 10, len: 3 }]);
        // Default: one byte in the middle half.
        for len in [1u64, 2, 3, 4, 10, 1000, 1 << 40] {
            for _ in 0..50 {
                let p = corrupt_plan(None, 1, Some(len), &mut rng);
                assert_eq!(p.byte_count(), 1, "len {len}");
                let off = p.spans[0].offset;
                assert!(off >= len / 4 && off < len, "len {len} off {off}");
                assert!(len < 4 || off < len / 4 + len / 2, "len {len} off {off}");
            }
        }
        // Many distinct bytes.
        let p = corrupt_plan(None, 100, Some(1000), &mut rng);
        assert_eq!(p.byte_count(), 100);
        assert!(p
            .spans
            .iter()
            .all(|s| s.offset >= 250 && s.offset + s.len <= 750));
        // More than the region: the whole region.
        let p = corrupt_plan(None, 4096, Some(100), &mut rng);
        assert_eq!(
            p.spans,
            vec![ByteSpan {
                offset: 25,
                len: 50
            }]
        );
        assert_eq!(
            corrupt_plan(None, 1, Some(0), &mut rng),
            CorruptPlan::default()
        );
    }

    #[test]
    fn corrupt_decision_is_deterministic_and_applies() {
        let rule = named("c", ActionSpec::Corrupt(CorruptSpec::default()));
        let facts = RequestFacts {
            status: Some(200),
            content_length: Some(4000),
            ..zip_facts()
        };
        let plan_of = |seed| {
            let mut e = FaultEngine::new(vec![rule.clone()], seed).unwrap();
            match e.decide(Phase::Response, &facts).remove(0).action {
                Action::Corrupt { plan } => plan,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(plan_of(1), plan_of(1));
        let plan = plan_of(1);
        let body = vec![0u8; 4000];
        let mut out = body.clone();
        for (i, chunk) in out.chunks_mut(999).enumerate() {
            corrupt_in_place(chunk, (i * 999) as u64, &plan);
        }
        assert_eq!(out.iter().filter(|&&b| b != 0).count(), 1);
    }

    #[test]
    fn jitter_distributions_stay_within_parameters() {
        const N: usize = 10_000;
        let draws = |jitter: Jitter, fixed: u64| -> Vec<f64> {
            let mut e = FaultEngine::new(vec![named("j", latency(fixed, jitter))], 99).unwrap();
            (0..N)
                .map(
                    |_| match e.decide(Phase::Request, &zip_facts()).remove(0).action {
                        Action::Latency { ms } => ms as f64,
                        other => panic!("{other:?}"),
                    },
                )
                .collect()
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let stddev = |v: &[f64]| {
            let m = mean(v);
            (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
        };

        let u = draws(
            Jitter::Uniform {
                min_ms: -50,
                max_ms: 50,
            },
            100,
        );
        assert!(u.iter().all(|&x| (50.0..=150.0).contains(&x)));
        assert!(
            u.contains(&50.0) && u.contains(&150.0),
            "both bounds are reachable"
        );
        assert!((mean(&u) - 100.0).abs() < 2.0, "{}", mean(&u));

        let n = draws(
            Jitter::Normal {
                mean_ms: 0.0,
                stddev_ms: 40.0,
            },
            500,
        );
        assert!((mean(&n) - 500.0).abs() < 2.0, "mean {}", mean(&n));
        assert!((stddev(&n) - 40.0).abs() < 2.0, "stddev {}", stddev(&n));

        // A wide normal around a small base is clamped at 0, never negative.
        let clamped = draws(
            Jitter::Normal {
                mean_ms: 0.0,
                stddev_ms: 100.0,
            },
            10,
        );
        assert!(clamped.iter().all(|&x| x >= 0.0));
        assert!(clamped.contains(&0.0));

        let mu = 4.0f64;
        let mut l = draws(Jitter::Lognormal { mu, sigma: 0.5 }, 0);
        assert!(l.iter().all(|&x| x >= 0.0));
        assert!(
            l.iter().filter(|&&x| x > 0.0).count() == N,
            "strictly positive at this mu"
        );
        l.sort_by(f64::total_cmp);
        let median = l[N / 2];
        let expect = mu.exp();
        assert!(
            (median - expect).abs() / expect < 0.05,
            "median {median} vs {expect}"
        );
    }

    #[test]
    fn admin_updates() {
        let mut e = FaultEngine::new(
            vec![Rule::new(respond(502)), named("keep", respond(503))],
            0,
        )
        .unwrap();
        assert_eq!(
            e.rules()
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["rule-1", "keep"]
        );
        let _ = run(&mut e, 3);
        // Invalid replacement: old rules and counters survive.
        let mut bad = named("bad", respond(502));
        bad.select.every = Some(0);
        let err = e
            .replace_rules(vec![named("ok", respond(500)), bad])
            .unwrap_err();
        assert!(err.to_string().contains("'bad'"), "{err}");
        assert_eq!(e.rules().len(), 2);
        assert_eq!(e.stats().rules[0].matched, 3);
        // Duplicate names refused.
        assert!(matches!(
            e.add_rule(named("keep", respond(500))),
            Err(FaultError::DuplicateName(_))
        ));
        assert!(matches!(
            e.replace_rules(vec![named("d", respond(500)), named("d", respond(501))]),
            Err(FaultError::DuplicateName(_))
        ));
        // Auto names skip taken ones.
        assert_eq!(e.add_rule(Rule::new(respond(500))).unwrap(), "rule-3");
        assert_eq!(e.add_rule(named("rule-4", respond(500))).unwrap(), "rule-4");
        assert_eq!(e.add_rule(Rule::new(respond(500))).unwrap(), "rule-5");
        let mut invalid = Rule::new(respond(500));
        invalid.select.first = Some(0);
        assert!(e.add_rule(invalid).is_err());
        assert_eq!(e.remove_rule("keep").unwrap().name, "keep");
        assert!(matches!(
            e.remove_rule("keep"),
            Err(FaultError::UnknownRule(_))
        ));
        e.reset();
        assert!(e
            .stats()
            .rules
            .iter()
            .all(|r| r.matched == 0 && r.applied == 0));
        e.replace_rules(vec![]).unwrap();
        assert!(e.is_empty());
        let json = serde_json::to_string(&e.stats()).unwrap();
        assert!(json.contains("\"seed\":0"));
    }

    #[test]
    fn auto_names_avoid_explicit_ones() {
        let rules = vec![
            Rule::new(respond(502)),
            named("rule-1", respond(503)),
            Rule::new(respond(504)),
        ];
        let e = FaultEngine::new(rules, 0).unwrap();
        let names: Vec<String> = e.rules().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["rule-2", "rule-1", "rule-3"]);
    }

    #[test]
    fn engine_can_be_shared_across_tasks() {
        // The shell keeps one engine behind a mutex for all connections.
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<FaultEngine>();
        assert_send_sync::<Decision>();
    }

    #[test]
    fn trace_summary_joins_decisions() {
        assert_eq!(trace_summary(&[]), None);
        let ds = vec![
            Decision {
                rule: "lat".into(),
                action: Action::Latency { ms: 50 },
            },
            Decision {
                rule: "r1".into(),
                action: Action::Reset {
                    after_bytes: None,
                    h2_code: None,
                },
            },
        ];
        assert_eq!(
            trace_summary(&ds),
            Some((
                "lat+r1".to_string(),
                "latency 50ms; reset before head".to_string()
            ))
        );
    }

    #[test]
    fn naming_tries_each_candidate_name_at_most_once() {
        // The worst case for a search from each rule's own position: m explicit names
        // `rule-(m+1)` .. `rule-2m` followed by m unnamed rules, whose positions are
        // exactly those names. Searching afresh for each costs m*m tries; the cursor
        // tries each candidate once.
        let m = 2_000;
        let mut rules: Vec<Rule> = (m + 1..=2 * m)
            .map(|n| named(&format!("rule-{n}"), respond(502)))
            .collect();
        rules.extend((0..m).map(|_| Rule::new(respond(502))));
        let mut taken: HashSet<String> = rules.iter().map(|r| r.name.clone()).collect();
        taken.remove("");
        let tried = name_unnamed(&mut rules, &mut taken);
        assert!(
            tried <= 2 * rules.len(),
            "{tried} names tried for {} rules",
            rules.len()
        );
        let names: Vec<&str> = rules[m..].iter().map(|r| r.name.as_str()).collect();
        let want: Vec<String> = (2 * m + 1..=3 * m).map(|n| format!("rule-{n}")).collect();
        assert_eq!(names, want);

        // The same names as a search from each position would give.
        let mut rules = vec![
            Rule::new(respond(502)),
            named("rule-3", respond(502)),
            Rule::new(respond(502)),
            Rule::new(respond(502)),
            named("rule-6", respond(502)),
            Rule::new(respond(502)),
            Rule::new(respond(502)),
        ];
        let mut taken: HashSet<String> = ["rule-3", "rule-6"].map(String::from).into();
        let tried = name_unnamed(&mut rules, &mut taken);
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["rule-1", "rule-3", "rule-4", "rule-5", "rule-6", "rule-7", "rule-8"]
        );
        let borrowed: HashSet<&str> = ["rule-3", "rule-6"].into();
        assert_eq!(free_name(4, &borrowed), "rule-4");
        assert!(tried <= 2 * rules.len());
        // A large file of unnamed rules is named in one pass.
        let mut rules: Vec<Rule> = (0..20_000).map(|_| Rule::new(respond(502))).collect();
        assert_eq!(name_unnamed(&mut rules, &mut HashSet::new()), 20_000);
        assert_eq!(rules[19_999].name, "rule-20000");
    }

    #[test]
    fn decisions_serialise_for_the_trace() {
        let d = Decision {
            rule: "x".into(),
            action: Action::Reset {
                after_bytes: Some(3),
                h2_code: None,
            },
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, r#"{"rule":"x","action":"reset","after_bytes":3}"#);
        let d = Decision {
            rule: "x".into(),
            action: Action::Reset {
                after_bytes: Some(3),
                h2_code: Some(crate::fault::H2Code::INTERNAL_ERROR),
            },
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"rule":"x","action":"reset","after_bytes":3,"h2_code":"INTERNAL_ERROR"}"#
        );
        let m = Match::default();
        assert!(m.is_any());
    }
}
