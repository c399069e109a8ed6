//! One exchange's fault decisions (request and response phase) folded into what the
//! shell must do: an injected answer, delays, and the faults applied while a body streams.

use std::time::Duration;

use super::action::Action;
use super::engine::Decision;
use super::rule::StallEnd;
use super::shaping::CorruptPlan;
use super::values::H2Code;

/// An injected answer: status, extra headers, text body.
pub type InjectedAnswer = (u16, Vec<(String, String)>, String);

/// What the decisions of one exchange ask the shell to do.
#[derive(Debug, Default, Clone)]
pub struct FaultPlan {
    pub respond: Option<InjectedAnswer>,
    pub latency: Duration,
    /// Stall before the response head: duration (None = forever), then how to end.
    pub stall_head: Option<(Option<Duration>, StallEnd)>,
    pub reset_head: bool,
    pub up_bytes_per_sec: Option<u64>,
    pub body: BodyFaults,
}

/// Faults applied while a body streams.
#[derive(Debug, Default, Clone)]
pub struct BodyFaults {
    pub bytes_per_sec: Option<u64>,
    pub truncate_at: Option<u64>,
    pub reset_at: Option<u64>,
    /// The HTTP/2 error code of a mid-body reset (None: hyper's INTERNAL_ERROR).
    pub reset_code: Option<H2Code>,
    pub stall_at: Option<(u64, Option<Duration>, StallEnd)>,
    pub corrupt: Option<CorruptPlan>,
}

impl BodyFaults {
    pub fn is_empty(&self) -> bool {
        self.bytes_per_sec.is_none()
            && self.truncate_at.is_none()
            && self.reset_at.is_none()
            && self.stall_at.is_none()
            && self.corrupt.is_none()
    }

    /// Whether the body may end up shorter than declared.
    pub fn shortens(&self) -> bool {
        self.truncate_at.is_some()
    }
}

impl FaultPlan {
    /// Folds decisions (request and response phase) into one plan.
    pub fn add(&mut self, decisions: &[Decision]) {
        for d in decisions {
            match &d.action {
                Action::Respond {
                    status,
                    headers,
                    body,
                } => self.respond = Some((*status, headers.clone(), body.clone())),
                Action::Latency { ms } => self.latency += Duration::from_millis(*ms),
                Action::Bandwidth {
                    down_bytes_per_sec,
                    up_bytes_per_sec,
                } => {
                    self.body.bytes_per_sec = down_bytes_per_sec.or(self.body.bytes_per_sec);
                    self.up_bytes_per_sec = up_bytes_per_sec.or(self.up_bytes_per_sec);
                }
                Action::Stall {
                    ms,
                    then,
                    after_bytes,
                } => {
                    let wait = ms.map(Duration::from_millis);
                    match after_bytes {
                        None => self.stall_head = Some((wait, *then)),
                        Some(at) => self.body.stall_at = Some((*at, wait, *then)),
                    }
                }
                Action::Reset {
                    after_bytes: None, ..
                } => self.reset_head = true,
                Action::Reset {
                    after_bytes: Some(at),
                    h2_code,
                } => {
                    self.body.reset_at = Some(*at);
                    self.body.reset_code = *h2_code;
                }
                Action::Truncate { after_bytes } => self.body.truncate_at = Some(*after_bytes),
                Action::Corrupt { plan } => self.body.corrupt = Some(plan.clone()),
                // Connection- and TLS-level actions are executed before any request.
                Action::RefuseConnect { .. } | Action::CloseAfterConnect | Action::Tls { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::shaping::ByteSpan;

    fn d(action: Action) -> Decision {
        Decision {
            rule: "r".into(),
            action,
        }
    }

    #[test]
    fn decisions_fold_into_one_plan() {
        let mut plan = FaultPlan::default();
        plan.add(&[
            d(Action::Latency { ms: 20 }),
            d(Action::Bandwidth {
                down_bytes_per_sec: Some(1000),
                up_bytes_per_sec: None,
            }),
        ]);
        // The response phase adds to what the request phase decided.
        plan.add(&[
            d(Action::Latency { ms: 5 }),
            d(Action::Bandwidth {
                down_bytes_per_sec: None,
                up_bytes_per_sec: Some(10),
            }),
            d(Action::Stall {
                ms: Some(100),
                then: StallEnd::Reset,
                after_bytes: Some(7),
            }),
            d(Action::Corrupt {
                plan: CorruptPlan {
                    spans: vec![ByteSpan { offset: 1, len: 1 }],
                },
            }),
        ]);
        assert_eq!(plan.latency, Duration::from_millis(25));
        assert_eq!(plan.body.bytes_per_sec, Some(1000));
        assert_eq!(plan.up_bytes_per_sec, Some(10));
        assert_eq!(
            plan.body.stall_at,
            Some((7, Some(Duration::from_millis(100)), StallEnd::Reset))
        );
        assert!(plan.body.corrupt.is_some() && plan.stall_head.is_none());
        assert!(!plan.body.is_empty() && !plan.body.shortens());

        let mut head = FaultPlan::default();
        head.add(&[
            d(Action::Stall {
                ms: None,
                then: StallEnd::Close,
                after_bytes: None,
            }),
            d(Action::Reset {
                after_bytes: None,
                h2_code: None,
            }),
            d(Action::Truncate { after_bytes: 3 }),
            d(Action::Respond {
                status: 503,
                headers: vec![],
                body: "x".into(),
            }),
            d(Action::CloseAfterConnect),
        ]);
        assert_eq!(head.stall_head, Some((None, StallEnd::Close)));
        assert!(head.reset_head && head.body.shortens());
        assert_eq!(head.respond.as_ref().map(|r| r.0), Some(503));
        assert!(FaultPlan::default().body.is_empty());
    }
}
