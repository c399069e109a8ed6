//! Executing injected faults on live streams: a body wrapper that paces, stalls, cuts,
//! resets and corrupts bytes as the pure `fault` engine decided (gathered per exchange
//! in `fault::FaultPlan`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

// tokio's clock, so paused-time tests see the pacing.
use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::io::{reset_client, ConnectionFate};
use super::BoxError;
use crate::fault::{bandwidth_chunk_size, bandwidth_delay, corrupt_in_place, cut_within, StallEnd};
pub use crate::fault::{BodyFaults, FaultPlan};

/// Sleeps for `wait`, or forever when `None`.
pub async fn stall(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending::<()>().await,
    }
}

pin_project! {
    /// Applies `BodyFaults` to a body as it streams.
    pub struct FaultBody<B> {
        #[pin]
        inner: B,
        faults: BodyFaults,
        offset: u64,
        started: Instant,
        held: Option<Bytes>,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        after_sleep: AfterSleep,
        // Delivered on the poll after the bytes that precede a reset.
        pending_error: Option<BoxError>,
        done: bool,
        // Where an injected reset is sent (HTTP/1.1 only, see `ConnectionFate`).
        fate: Option<ConnectionFate>,
    }
}

#[derive(Clone, Copy)]
enum AfterSleep {
    Continue,
    Fail(StallEnd),
}

impl<B> FaultBody<B> {
    pub fn new(inner: B, faults: BodyFaults) -> Self {
        FaultBody {
            inner,
            faults,
            offset: 0,
            started: Instant::now(),
            held: None,
            sleep: None,
            after_sleep: AfterSleep::Continue,
            pending_error: None,
            done: false,
            fate: None,
        }
    }

    /// Resets the client's TCP connection where the faults reset or end a stall so.
    pub fn with_fate(mut self, fate: Option<ConnectionFate>) -> Self {
        self.fate = fate;
        self
    }
}

fn stall_error(end: StallEnd) -> BoxError {
    match end {
        StallEnd::Close => "modscope: injected stall ended, closing".into(),
        StallEnd::Reset => "modscope: injected stall ended, resetting".into(),
    }
}

impl<B> Body for FaultBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *this.sleep = None;
                if let AfterSleep::Fail(end) = *this.after_sleep {
                    *this.done = true;
                    if end == StallEnd::Reset {
                        reset_client(this.fate.as_ref());
                    }
                    return Poll::Ready(Some(Err(stall_error(end))));
                }
            }
            if let Some(e) = this.pending_error.take() {
                *this.done = true;
                reset_client(this.fate.as_ref());
                return Poll::Ready(Some(Err(e)));
            }
            if *this.done {
                return Poll::Ready(None);
            }
            // Pace before handing out more bytes.
            if let Some(bps) = this.faults.bytes_per_sec {
                let delay = bandwidth_delay(*this.offset, this.started.elapsed(), bps);
                if !delay.is_zero() {
                    *this.sleep = Some(Box::pin(tokio::time::sleep(delay)));
                    *this.after_sleep = AfterSleep::Continue;
                    continue;
                }
            }
            let mut data = match this.held.take() {
                Some(held) => held,
                None => match this.inner.as_mut().poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    },
                },
            };
            if let Some(bps) = this.faults.bytes_per_sec {
                let max = bandwidth_chunk_size(bps).max(1);
                if data.len() > max {
                    *this.held = Some(data.split_off(max));
                }
            }
            let offset = *this.offset;
            if let Some(at) = this.faults.truncate_at {
                if let Some(n) = cut_within(offset, data.len(), at) {
                    data.truncate(n);
                    *this.done = true;
                    this.held.take();
                }
            }
            if let Some(at) = this.faults.reset_at {
                if let Some(n) = cut_within(offset, data.len(), at) {
                    data.truncate(n);
                    this.held.take();
                    this.faults.reset_at = None;
                    *this.pending_error = Some(match this.faults.reset_code {
                        // hyper resets an HTTP/2 stream with the h2 reason it finds in
                        // the body error's chain (INTERNAL_ERROR when there is none).
                        Some(code) => Box::new(h2::Error::from(h2::Reason::from(code.get()))),
                        None => "modscope: injected reset".into(),
                    });
                    // A short pause lets the server flush the bytes before the cut;
                    // failing at once would discard them with the connection.
                    *this.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_millis(5))));
                    *this.after_sleep = AfterSleep::Continue;
                }
            }
            if let Some((at, wait, end)) = this.faults.stall_at {
                if let Some(n) = cut_within(offset, data.len(), at) {
                    data.truncate(n);
                    *this.sleep = Some(Box::pin(async_sleep(wait)));
                    *this.after_sleep = AfterSleep::Fail(end);
                    this.faults.stall_at = None;
                    this.held.take();
                }
            }
            if let Some(plan) = &this.faults.corrupt {
                let mut owned = BytesMut::from(&data[..]);
                corrupt_in_place(&mut owned, offset, plan);
                data = owned.freeze();
            }
            *this.offset += data.len() as u64;
            if data.is_empty()
                && !*this.done
                && this.sleep.is_none()
                && this.pending_error.is_none()
            {
                continue;
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
            || (self.held.is_none()
                && self.sleep.is_none()
                && self.pending_error.is_none()
                && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.faults.shortens()
            || self.faults.reset_at.is_some()
            || self.faults.stall_at.is_some()
        {
            return SizeHint::default();
        }
        self.inner.size_hint()
    }
}

/// A sleep that may never end (`None`): a far-future deadline keeps the type uniform.
fn async_sleep(wait: Option<Duration>) -> tokio::time::Sleep {
    tokio::time::sleep(wait.unwrap_or(Duration::from_secs(365 * 24 * 3600)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::CorruptPlan;
    use http_body_util::{BodyExt, Full};

    fn body(n: usize) -> Full<Bytes> {
        Full::new(Bytes::from((0..n).map(|i| i as u8).collect::<Vec<u8>>()))
    }

    #[tokio::test]
    async fn truncate_ends_cleanly_at_the_offset() {
        let faults = BodyFaults {
            truncate_at: Some(10),
            ..BodyFaults::default()
        };
        let out = FaultBody::new(body(100), faults)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(out.len(), 10);
    }

    #[tokio::test]
    async fn reset_delivers_the_prefix_then_fails() {
        let faults = BodyFaults {
            reset_at: Some(40),
            ..BodyFaults::default()
        };
        let mut b = FaultBody::new(body(100), faults);
        let first = b.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), 40);
        assert!(b.frame().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn corrupt_flips_planned_bytes_only() {
        let plan = CorruptPlan::from_offsets(vec![5, 50]);
        let faults = BodyFaults {
            corrupt: Some(plan),
            ..BodyFaults::default()
        };
        let out = FaultBody::new(body(100), faults)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let original: Vec<u8> = (0..100).map(|i| i as u8).collect();
        let diff: Vec<usize> = (0..100).filter(|&i| out[i] != original[i]).collect();
        assert_eq!(diff, [5, 50]);
    }

    #[tokio::test(start_paused = true)]
    async fn bandwidth_cap_paces_the_body() {
        // 256 KiB/s for 1 MiB: about 4 s of (paused, auto-advanced) time.
        let faults = BodyFaults {
            bytes_per_sec: Some(256 * 1024),
            ..BodyFaults::default()
        };
        let started = tokio::time::Instant::now();
        let out = FaultBody::new(body(1024 * 1024), faults)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(out.len(), 1024 * 1024);
        let took = started.elapsed().as_secs_f64();
        assert!((3.5..=4.5).contains(&took), "took {took} s");
    }

    #[tokio::test(start_paused = true)]
    async fn stall_mid_body_then_fails() {
        let faults = BodyFaults {
            stall_at: Some((30, Some(Duration::from_secs(5)), StallEnd::Close)),
            ..BodyFaults::default()
        };
        let started = tokio::time::Instant::now();
        let mut b = FaultBody::new(body(100), faults);
        assert_eq!(
            b.frame().await.unwrap().unwrap().into_data().unwrap().len(),
            30
        );
        assert!(b.frame().await.unwrap().is_err());
        assert!(started.elapsed() >= Duration::from_secs(5));
    }
}
