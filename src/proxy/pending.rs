//! One exchange on its way to the observers: `Pending` holds what is known before the
//! response body ends and turns each way an exchange can end (answered, injected,
//! failed locally, failed to connect or send, finished streaming) into one `Exchange`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};

use super::body::BodyOutcome;
use super::heads::{header_pairs, text_response};
use super::upstream::{ConnInfo, Target, UpstreamError};
use super::{ProxyBody, Shared};
use crate::exchange::{
    BodyFacts, BodyStall, ClientTls, ErrorKind, Exchange, ExchangeError, ExchangeRequest,
    FailPhase, FaultFacts, PhaseTimes, ResponseFacts, TlsFacts,
};
use crate::fault::{trace_summary, Decision};

/// When the request went up and its response head came back.
#[derive(Clone, Copy)]
pub(super) struct Timing {
    /// Time before sending: go waited it, so it counts as `blocked`.
    pub blocked: Duration,
    pub sent_at: Instant,
    pub head_at: Instant,
}

/// Counts an exchange in flight from its request head until it is published, or
/// dropped unpublished (the client went away before a response head).
pub(super) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub(super) fn start(shared: &Shared) -> Self {
        shared.stats.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(shared.stats.in_flight.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a finished exchange goes: publishing it, then (as the publisher drops) no
/// longer counting it in flight, in that order, so whoever sees nothing in flight
/// finds every exchange with the observers.
pub(super) struct Publisher {
    shared: Arc<Shared>,
    _in_flight: InFlight,
}

impl Publisher {
    fn publish(self, ex: Exchange) {
        self.shared.publish(ex);
    }
}

/// Everything known about an exchange before its response body ends.
pub(super) struct Pending {
    pub shared: Arc<Shared>,
    pub id: u64,
    pub started_wall: SystemTime,
    pub started: Instant,
    pub request: ExchangeRequest,
    pub client_tls: Option<ClientTls>,
    /// Filled by the request body's tap when it ends.
    pub request_outcome: Arc<Mutex<Option<BodyOutcome>>>,
    pub fault: Option<FaultFacts>,
    pub client_connection: u64,
    pub in_flight: InFlight,
}

impl Pending {
    fn request_body(&self) -> (BodyFacts, Option<Instant>) {
        let outcome = self.request_outcome.lock().ok().and_then(|o| o.clone());
        match outcome {
            Some(o) => (
                BodyFacts {
                    size: o.bytes,
                    sha256: None,
                    complete: o.complete,
                },
                Some(o.ended),
            ),
            None => (BodyFacts::default(), None),
        }
    }

    fn base(self, info: Option<&ConnInfo>, fresh: bool) -> (Exchange, Publisher) {
        let (body, _) = self.request_body();
        let mut request = self.request;
        request.body = body;
        let conn_timings = info
            .filter(|_| fresh)
            .map(|i| i.timings)
            .unwrap_or_default();
        let tls = TlsFacts {
            client: self.client_tls,
            upstream: info.and_then(|i| i.tls.clone()),
        };
        let has_tls = tls.client.is_some() || tls.upstream.is_some();
        let ex = Exchange {
            id: self.id,
            started: self.started_wall,
            request,
            response: None,
            timings: PhaseTimes {
                blocked: None,
                dns: conn_timings.dns.map(ms),
                tcp: conn_timings.tcp.map(ms),
                tls: conn_timings.tls.map(ms),
                send: None,
                wait: None,
                receive: None,
            },
            connection_id: info.map(|i| i.id),
            server_ip: info.and_then(|i| i.server_ip).map(|ip| ip.to_string()),
            tls: has_tls.then_some(tls),
            stall: None,
            error: None,
            fault: self.fault,
            client_connection: Some(self.client_connection),
        };
        let publisher = Publisher {
            shared: self.shared,
            _in_flight: self.in_flight,
        };
        (ex, publisher)
    }

    /// Answers with an injected response instead of forwarding, and records it.
    pub(super) fn answer_injected(
        self,
        status: u16,
        headers: &[(String, String)],
        text: &str,
    ) -> Response<ProxyBody> {
        let mut resp = text_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            text,
        );
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                resp.headers_mut().insert(k, v);
            }
        }
        let started = self.started;
        let (mut ex, shared) = self.base(None, false);
        let size = text.trim_end().len() as u64 + 1;
        ex.timings.wait = Some(ms(started.elapsed()));
        ex.timings.send = Some(0.0);
        ex.timings.receive = Some(0.0);
        ex.response = Some(ResponseFacts {
            status,
            http_version: ex.request.http_version.clone(),
            headers: header_pairs(resp.headers()),
            trailers: Vec::new(),
            body: BodyFacts {
                size,
                sha256: None,
                complete: true,
            },
        });
        shared.publish(ex);
        resp
    }

    pub(super) fn fail_injected(self, phase: FailPhase, message: &str) {
        self.fail_locally(phase, ErrorKind::Injected, message);
    }

    pub(super) fn fail_locally(self, phase: FailPhase, kind: ErrorKind, message: &str) {
        let started = self.started;
        let (mut ex, shared) = self.base(None, false);
        ex.timings.wait = Some(ms(started.elapsed()));
        ex.error = Some(ExchangeError::new(phase, kind, message));
        shared.publish(ex);
    }

    pub(super) fn fail_connect(self, err: &UpstreamError, at: Instant) {
        let started = self.started;
        let client_tls = self.client_tls.clone();
        let (mut ex, shared) = self.base(None, false);
        ex.timings.dns = err.timings.dns.map(ms);
        ex.timings.tcp = err.timings.tcp.map(ms);
        ex.timings.tls = err.timings.tls.map(ms);
        let phases: Duration = [err.timings.dns, err.timings.tcp, err.timings.tls]
            .into_iter()
            .flatten()
            .sum();
        // Whatever is not a named phase was spent waiting for the failed connection.
        ex.timings.blocked = Some(ms(at
            .saturating_duration_since(started)
            .saturating_sub(phases)));
        ex.server_ip = err.server_ip.map(|ip| ip.to_string());
        ex.tls = Some(TlsFacts {
            client: client_tls,
            upstream: err.tls.clone(),
        });
        ex.error = Some(ExchangeError::new(
            err.phase.clone(),
            err.kind.clone(),
            format!("{}: {}", err.what, err.message),
        ));
        shared.publish(ex);
    }

    pub(super) fn fail_request(
        self,
        info: &ConnInfo,
        kind: ErrorKind,
        message: &str,
        sent_at: Instant,
        at: Instant,
    ) {
        let (mut ex, shared) = self.base(Some(info), false);
        ex.timings.send = Some(0.0);
        ex.timings.wait = Some(ms(at.saturating_duration_since(sent_at)));
        ex.error = Some(ExchangeError::new(FailPhase::Response, kind, message));
        shared.publish(ex);
    }

    pub(super) fn finish(
        self,
        mut response: ResponseFacts,
        outcome: BodyOutcome,
        info: Option<&ConnInfo>,
        fresh: bool,
        timing: Timing,
        expected: Option<u64>,
    ) {
        let (_, request_ended) = self.request_body();
        let (mut ex, shared) = self.base(info, fresh);
        let send_end = request_ended
            .unwrap_or(timing.sent_at)
            .clamp(timing.sent_at, timing.head_at);
        ex.timings.blocked = Some(ms(timing.blocked));
        ex.timings.send = Some(ms(send_end.saturating_duration_since(timing.sent_at)));
        ex.timings.wait = Some(ms(timing.head_at.saturating_duration_since(send_end)));
        ex.timings.receive = Some(ms(outcome.ended.saturating_duration_since(timing.head_at)));
        response.body = BodyFacts {
            size: outcome.bytes,
            sha256: None,
            complete: outcome.complete,
        };
        ex.stall = outcome.stall.map(|s| BodyStall {
            longest_ms: ms(s.longest),
            at_bytes: s.at_bytes,
            expected_bytes: expected,
            resumed: s.resumed,
        });
        if let Some(trailers) = &outcome.trailers {
            response.trailers = header_pairs(trailers);
        }
        let injected = ex.fault.is_some();
        if !outcome.complete {
            ex.error = Some(match &outcome.error {
                Some(message) => ExchangeError::new(
                    FailPhase::Body,
                    if injected {
                        ErrorKind::Injected
                    } else {
                        ErrorKind::UpstreamReset
                    },
                    format!(
                        "the response body failed after {} bytes: {message}",
                        outcome.bytes
                    ),
                ),
                None => ExchangeError::new(
                    FailPhase::Body,
                    ErrorKind::ClientAbort,
                    format!("the client stopped reading after {} bytes", outcome.bytes),
                ),
            });
        }
        ex.response = Some(response);
        shared.publish(ex);
    }
}

/// Records a CONNECT- or TLS-level event that never became an HTTP exchange (so the trace
/// and the summary still show it), as a `CONNECT https://host:port/` entry.
pub fn publish_connection_event(
    shared: &Shared,
    target: &Target,
    status: Option<u16>,
    error: Option<ExchangeError>,
    fault: Option<FaultFacts>,
) {
    let ex = Exchange {
        id: shared.next_exchange_id(),
        started: SystemTime::now(),
        request: ExchangeRequest {
            method: "CONNECT".into(),
            url: format!("https://{}/", target.authority()),
            http_version: "HTTP/1.1".into(),
            headers: Vec::new(),
            body: BodyFacts {
                complete: true,
                ..BodyFacts::default()
            },
        },
        response: status.map(|status| ResponseFacts {
            status,
            http_version: "HTTP/1.1".into(),
            headers: Vec::new(),
            trailers: Vec::new(),
            body: BodyFacts {
                complete: true,
                ..BodyFacts::default()
            },
        }),
        timings: PhaseTimes {
            send: Some(0.0),
            wait: Some(0.0),
            receive: Some(0.0),
            ..PhaseTimes::default()
        },
        connection_id: None,
        server_ip: None,
        tls: None,
        error,
        fault,
        stall: None,
        client_connection: None,
    };
    shared.publish(ex);
}

/// The `_fault` note for a set of decisions.
pub fn fault_facts(decisions: &[Decision]) -> Option<FaultFacts> {
    trace_summary(decisions).map(|(rule, action)| FaultFacts { rule, action })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
