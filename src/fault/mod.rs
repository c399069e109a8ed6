//! Fault injection for chaos tests: rules, their sources (TOML, inline specs, presets)
//! and the deterministic engine that turns request facts into concrete fault actions.
//!
//! This module is pure: no sockets, files, environment or clock. The IO shell reads
//! rule files, passes time as values, asks [`FaultEngine::decide`] at each [`Phase`]
//! of an exchange and carries out the returned [`Action`]s, using
//! [`bandwidth_delay`] and [`corrupt_in_place`] while streaming bodies.
//!
//! How the shell is expected to drive it:
//!
//! 1. CONNECT arrives: `decide(Phase::Connect, &RequestFacts::connect(host, port))`;
//!    a `refuse_connect` or `close_after_connect` decision ends it there.
//! 2. Client TLS handshake: `decide(Phase::Tls, ..)` with the same facts (SNI as host).
//! 3. Request head classified by `gomod`: `decide(Phase::Request, facts)`. Latency
//!    is slept first; a terminal decision (respond, stall, reset) is then carried
//!    out without contacting upstream; bandwidth caps both directions.
//! 4. Upstream response head: `decide(Phase::Response, facts + status + length)`,
//!    unless step 3 was terminal. Truncate, corrupt, mid-body reset/stall and
//!    status-matched rules act here.
//!
//! Body faults stream: [`cut_within`] says where truncate / mid-body reset / stall
//! land in a chunk, [`corrupt_in_place`] flips planned bytes, [`bandwidth_delay`]
//! paces. [`trace_summary`] gives the `_fault {rule, action}` of the trace entry.
//!
//! Determinism: one seed gives the same faults for the same requests. Random draws
//! are keyed by seed, rule name, request (method, host, port, path) and how many
//! times that request matched the rule, so the victims do not depend on the order
//! in which go's parallel fetches arrive; `first`/`every`/`after` count arrivals.
//!
//! The user-facing description (rule format, inline syntax, presets) is `docs/chaos.md`.

mod action;
mod engine;
mod error;
mod plan;
mod preset;
mod rng;
mod rule;
mod shaping;
mod source;
mod spec;
mod validate;
mod values;

pub use crate::net::{glob_match, host_match, module_match};
pub use action::{describe, Action};
pub use engine::{
    prepare_rules, trace_summary, Decision, FaultEngine, FaultStats, RequestFacts, RuleStats,
};
pub use error::{FaultError, RuleError};
pub use plan::{BodyFaults, FaultPlan, InjectedAnswer};
pub use preset::{preset, PRESETS};
pub use rng::Rng;
pub use rule::{
    ActionSpec, BandwidthSpec, CertFault, CloseSpec, CorruptSpec, GoKind, Jitter, LatencySpec,
    LoginPageSpec, Match, Phase, RefuseSpec, ResetSpec, RespondSpec, Rule, Selection, StallEnd,
    StallSpec, StatusPattern, TlsSpec, TruncateSpec,
};
pub use shaping::{
    bandwidth_chunk_size, bandwidth_delay, corrupt_in_place, cut_within, ByteSpan, CorruptPlan,
};
pub use source::{parse_json_rule, parse_json_rules, parse_toml, RuleFile};
pub use spec::{parse_spec, SPEC_HELP};
pub use validate::MAX_CORRUPT_BYTES;
pub use values::{BodyPoint, H2Code, Probability, Status, MAX_DELAY_MS};
