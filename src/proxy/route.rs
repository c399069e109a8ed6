//! The routing decision for one request, made before anything is done: answer with an
//! injected response, fail before the response head, serve a recorded entry, answer a
//! replay miss, or forward upstream. Pure: the request's fault plan and the replay state
//! in, a `Route` out; `forward.rs` executes it.

use std::time::Duration;

use crate::fault::{FaultPlan, InjectedAnswer, StallEnd};
use crate::replay::OnMiss;

/// Who answers one request. `R` is the replay source, `E` the recorded entry a lookup
/// in it found.
#[derive(Debug, Clone, PartialEq)]
pub enum Route<R, E> {
    /// An injected answer (`respond`); nothing goes upstream.
    Inject(InjectedAnswer),
    /// The exchange fails before any response head.
    Fail(HeadFault),
    /// A recorded entry answers.
    Replay(R, E),
    /// Replay runs offline and has no entry: a 404/502 text answer says so.
    Miss(R, OnMiss),
    /// The origin answers.
    Upstream,
}

/// An injected failure before the response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadFault {
    /// Wait (forever when `None`), then end the exchange as the rule says.
    Stall(Option<Duration>, StallEnd),
    /// Reset at once.
    Reset,
}

/// Who answers a request, given its request-phase fault `plan` and, when replaying, the
/// replay source with its `--on-miss` policy. Faults come first, in the order respond,
/// stall, reset, and pre-empt the replay: `lookup` is called only when no fault answers,
/// because a lookup counts a hit or a miss in the replay report.
pub fn route<R: Copy, E>(
    plan: &FaultPlan,
    replay: Option<(R, OnMiss)>,
    lookup: impl FnOnce(R) -> Option<E>,
) -> Route<R, E> {
    if let Some(answer) = &plan.respond {
        return Route::Inject(answer.clone());
    }
    if let Some((wait, end)) = plan.stall_head {
        return Route::Fail(HeadFault::Stall(wait, end));
    }
    if plan.reset_head {
        return Route::Fail(HeadFault::Reset);
    }
    let Some((source, on_miss)) = replay else {
        return Route::Upstream;
    };
    match lookup(source) {
        Some(entry) => Route::Replay(source, entry),
        None if on_miss.uses_network() => Route::Upstream,
        None => Route::Miss(source, on_miss),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn answer() -> InjectedAnswer {
        (503, vec![("retry-after".into(), "1".into())], "down".into())
    }

    /// (plan, on_miss, what the lookup finds, route, whether the lookup ran); the replay
    /// source is `()`.
    type Case = (FaultPlan, Option<OnMiss>, Option<u32>, Route<(), u32>, bool);

    #[test]
    fn routes_by_faults_then_replay() {
        let stall = Some((Some(Duration::from_secs(2)), StallEnd::Reset));
        let plan = |respond: bool, stall_head, reset_head: bool| FaultPlan {
            respond: respond.then(answer),
            stall_head,
            reset_head,
            ..FaultPlan::default()
        };
        let quiet = plan(false, None, false);
        let cases: Vec<Case> = vec![
            // Not replaying: faults or the origin; there is no trace to look in.
            (quiet.clone(), None, Some(7), Route::Upstream, false),
            (
                plan(true, None, false),
                None,
                None,
                Route::Inject(answer()),
                false,
            ),
            (
                plan(false, stall, false),
                None,
                None,
                Route::Fail(HeadFault::Stall(
                    Some(Duration::from_secs(2)),
                    StallEnd::Reset,
                )),
                false,
            ),
            (
                plan(false, None, true),
                None,
                None,
                Route::Fail(HeadFault::Reset),
                false,
            ),
            // respond wins over stall, stall over reset.
            (
                plan(true, stall, true),
                None,
                None,
                Route::Inject(answer()),
                false,
            ),
            (
                plan(false, Some((None, StallEnd::Close)), true),
                None,
                None,
                Route::Fail(HeadFault::Stall(None, StallEnd::Close)),
                false,
            ),
            // Replaying: a hit is served whatever --on-miss says.
            (
                quiet.clone(),
                Some(OnMiss::NotFound),
                Some(3),
                Route::Replay((), 3),
                true,
            ),
            (
                quiet.clone(),
                Some(OnMiss::Record),
                Some(3),
                Route::Replay((), 3),
                true,
            ),
            // A miss: offline policies answer, network policies go upstream.
            (
                quiet.clone(),
                Some(OnMiss::NotFound),
                None,
                Route::Miss((), OnMiss::NotFound),
                true,
            ),
            (
                quiet.clone(),
                Some(OnMiss::BadGateway),
                None,
                Route::Miss((), OnMiss::BadGateway),
                true,
            ),
            (
                quiet.clone(),
                Some(OnMiss::Passthrough),
                None,
                Route::Upstream,
                true,
            ),
            (
                quiet.clone(),
                Some(OnMiss::Record),
                None,
                Route::Upstream,
                true,
            ),
            // Faults pre-empt the replay, and the lookup is not counted.
            (
                plan(true, None, false),
                Some(OnMiss::NotFound),
                Some(3),
                Route::Inject(answer()),
                false,
            ),
            (
                plan(false, None, true),
                Some(OnMiss::Record),
                Some(3),
                Route::Fail(HeadFault::Reset),
                false,
            ),
        ];
        for (i, (plan, on_miss, found, want, looked)) in cases.into_iter().enumerate() {
            let ran = Cell::new(false);
            let got = route(&plan, on_miss.map(|m| ((), m)), |()| {
                ran.set(true);
                found
            });
            assert_eq!(got, want, "case {i}");
            assert_eq!(ran.get(), looked, "case {i}: lookup ran");
        }
    }

    #[test]
    fn latency_and_body_faults_do_not_route() {
        // They shape an exchange that still goes where it would have gone.
        let plan = FaultPlan {
            latency: Duration::from_millis(20),
            up_bytes_per_sec: Some(1000),
            body: crate::fault::BodyFaults {
                truncate_at: Some(10),
                ..Default::default()
            },
            ..FaultPlan::default()
        };
        assert_eq!(route(&plan, None, |()| Some(1)), Route::Upstream);
        assert_eq!(
            route(&plan, Some(((), OnMiss::NotFound)), |()| Some(1)),
            Route::Replay((), 1)
        );
    }
}
