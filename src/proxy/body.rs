//! Streaming body wrapper: counts bytes, feeds an optional capture with backpressure, and
//! reports exactly once how the body ended (complete, failed, or dropped half-way).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::BoxError;

/// Receives the bytes of a body as they stream (the trace recorder implements it).
pub trait BodyCapture: Send + 'static {
    /// Ready for another chunk; `Pending` applies backpressure to the stream.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    fn chunk(&mut self, data: &Bytes);
    /// The body ended; `complete` is false when it was cut short.
    fn end(self: Box<Self>, complete: bool);
}

/// How a body ended.
#[derive(Debug, Clone)]
pub struct BodyOutcome {
    pub bytes: u64,
    pub complete: bool,
    /// Why the stream failed; `None` with `complete == false` means the reader abandoned it.
    pub error: Option<String>,
    pub first_byte: Option<Instant>,
    pub ended: Instant,
    pub trailers: Option<HeaderMap>,
    /// The longest time the body waited on its source for data, when it reached the
    /// stall threshold.
    pub stall: Option<Stall>,
}

/// A wait for body data of at least the stall threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    pub longest: Duration,
    /// Bytes received when the longest wait began.
    pub at_bytes: u64,
    /// Data arrived after that wait.
    pub resumed: bool,
}

/// Watches for waits on the body's source (not on a slow reader: only the time between
/// asking the source and getting data counts), and logs a stall as it happens.
struct StallWatch {
    after: Duration,
    label: String,
    // tokio's clock, so the timer and the measure agree (and tests can pause time).
    waiting_since: Option<tokio::time::Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    warned: bool,
    worst: Option<Stall>,
}

impl StallWatch {
    fn waiting(&mut self, cx: &mut Context<'_>, bytes: u64) {
        let since = *self
            .waiting_since
            .get_or_insert_with(tokio::time::Instant::now);
        if self.warned {
            return;
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(since + self.after)));
        if timer.as_mut().poll(cx).is_ready() {
            self.warned = true;
            tracing::warn!(
                "{}: no body data for {:?} after {bytes} bytes (the source stalls; go has no read timeout and waits)",
                self.label,
                self.after
            );
        }
    }

    /// Data arrived, or the body ended (`resumed` false).
    fn stop_waiting(&mut self, bytes_before: u64, resumed: bool) {
        let Some(since) = self.waiting_since.take() else {
            return;
        };
        self.timer = None;
        self.warned = false;
        let waited = since.elapsed();
        if waited >= self.after && self.worst.is_none_or(|w| waited > w.longest) {
            self.worst = Some(Stall {
                longest: waited,
                at_bytes: bytes_before,
                resumed,
            });
        } else if resumed {
            if let Some(w) = self.worst.as_mut() {
                w.resumed = true;
            }
        }
    }
}

pub type OnDone = Box<dyn FnOnce(BodyOutcome) + Send + 'static>;

pin_project! {
    /// Wraps a body; see the module docs.
    pub struct TapBody<B> {
        #[pin]
        inner: B,
        bytes: u64,
        first_byte: Option<Instant>,
        trailers: Option<HeaderMap>,
        // The inner body said it has nothing more (hyper may then stop polling before None).
        inner_done: bool,
        capture: Option<Box<dyn BodyCapture>>,
        on_done: Option<OnDone>,
        stall: Option<StallWatch>,
    }

    impl<B> PinnedDrop for TapBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.on_done.is_some() {
                // hyper may stop polling once the length is satisfied, without a final None.
                // An abandoned body has no error of its own: the reader (client) went away.
                let complete = *this.inner_done;
                let stall = end_stall(this.stall, *this.bytes);
                finish(this.capture, this.on_done, *this.bytes, *this.first_byte, this.trailers.take(), complete, None, stall);
            }
        }
    }
}

impl<B> TapBody<B> {
    pub fn new(inner: B, on_done: OnDone) -> Self
    where
        B: Body,
    {
        TapBody {
            // An empty body is done before its first poll, and hyper may never poll it.
            inner_done: inner.is_end_stream(),
            inner,
            bytes: 0,
            first_byte: None,
            trailers: None,
            capture: None,
            on_done: Some(on_done),
            stall: None,
        }
    }

    /// Records (and logs, naming `label`) waits on the source of at least `after`.
    pub fn watch_stalls(mut self, after: Duration, label: String) -> Self {
        self.stall = Some(StallWatch {
            after,
            label,
            waiting_since: None,
            timer: None,
            warned: false,
            worst: None,
        });
        self
    }

    pub fn with_capture(mut self, capture: Option<Box<dyn BodyCapture>>) -> Self {
        self.capture = capture;
        self
    }
}

fn end_stall(watch: &mut Option<StallWatch>, bytes: u64) -> Option<Stall> {
    let watch = watch.as_mut()?;
    watch.stop_waiting(bytes, false);
    watch.worst
}

#[allow(clippy::too_many_arguments)]
fn finish(
    capture: &mut Option<Box<dyn BodyCapture>>,
    on_done: &mut Option<OnDone>,
    bytes: u64,
    first_byte: Option<Instant>,
    trailers: Option<HeaderMap>,
    complete: bool,
    error: Option<String>,
    stall: Option<Stall>,
) {
    if let Some(c) = capture.take() {
        c.end(complete);
    }
    if let Some(done) = on_done.take() {
        done(BodyOutcome {
            bytes,
            complete,
            error,
            first_byte,
            ended: Instant::now(),
            trailers,
            stall,
        });
    }
}

impl<B> Body for TapBody<B>
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
        if this.on_done.is_none() {
            // Already ended: stay ended.
            return Poll::Ready(None);
        }
        if let Some(capture) = this.capture.as_mut() {
            if capture.poll_ready(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let polled = this.inner.as_mut().poll_frame(cx);
        *this.inner_done = this.inner.is_end_stream();
        match &polled {
            Poll::Pending => {
                if let Some(watch) = this.stall.as_mut() {
                    watch.waiting(cx, *this.bytes);
                }
            }
            Poll::Ready(Some(Ok(_))) => {
                if let Some(watch) = this.stall.as_mut() {
                    watch.stop_waiting(*this.bytes, true);
                }
            }
            Poll::Ready(_) => {}
        }
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        if !data.is_empty() && this.first_byte.is_none() {
                            *this.first_byte = Some(Instant::now());
                        }
                        *this.bytes += data.len() as u64;
                        if let Some(capture) = this.capture.as_mut() {
                            capture.chunk(&data);
                        }
                        Frame::data(data)
                    }
                    Err(frame) => {
                        if let Some(t) = frame.trailers_ref() {
                            this.trailers
                                .get_or_insert_with(HeaderMap::new)
                                .extend(t.clone());
                        }
                        frame
                    }
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                let stall = end_stall(this.stall, *this.bytes);
                finish(
                    this.capture,
                    this.on_done,
                    *this.bytes,
                    *this.first_byte,
                    this.trailers.take(),
                    false,
                    Some(error_chain(e.as_ref())),
                    stall,
                );
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                let stall = end_stall(this.stall, *this.bytes);
                finish(
                    this.capture,
                    this.on_done,
                    *this.bytes,
                    *this.first_byte,
                    this.trailers.take(),
                    true,
                    None,
                    stall,
                );
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.on_done.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `outer: inner: innermost` for an error and its sources.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::sync::{Arc, Mutex};

    fn collector() -> (Arc<Mutex<Option<BodyOutcome>>>, OnDone) {
        let slot = Arc::new(Mutex::new(None));
        let s = slot.clone();
        (slot, Box::new(move |o| *s.lock().unwrap() = Some(o)))
    }

    #[tokio::test]
    async fn counts_and_reports_completion_once() {
        let (slot, done) = collector();
        let body = TapBody::new(Full::new(Bytes::from_static(b"hello world")), done);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello world");
        let outcome = slot.lock().unwrap().clone().unwrap();
        assert_eq!(outcome.bytes, 11);
        assert!(outcome.complete);
    }

    #[tokio::test]
    async fn an_empty_body_dropped_unpolled_is_complete() {
        let (slot, done) = collector();
        let body = TapBody::new(Full::new(Bytes::new()), done);
        assert!(body.is_end_stream());
        drop(body);
        let outcome = slot.lock().unwrap().clone().unwrap();
        assert_eq!(outcome.bytes, 0);
        assert!(outcome.complete, "an empty answer is not a client abort");
    }

    #[tokio::test]
    async fn dropped_midway_is_incomplete() {
        let (slot, done) = collector();
        let chunks: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::data(Bytes::from_static(b"def"))),
        ];
        let stream = futures_util::stream::iter(chunks);
        let mut body = TapBody::new(StreamBody::new(stream), done);
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"abc"));
        drop(body);
        let outcome = slot.lock().unwrap().clone().unwrap();
        assert_eq!(outcome.bytes, 3);
        assert!(!outcome.complete);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_on_the_source_are_recorded_as_stalls() {
        let (slot, done) = collector();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let body = TapBody::new(StreamBody::new(stream), done)
            .watch_stalls(Duration::from_secs(10), "test".into());
        let reader = tokio::spawn(body.collect());
        tx.send(Ok(Frame::data(Bytes::from_static(b"abc"))))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        tx.send(Ok(Frame::data(Bytes::from_static(b"d"))))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(12)).await;
        tx.send(Ok(Frame::data(Bytes::from_static(b"e"))))
            .await
            .unwrap();
        drop(tx);
        reader.await.unwrap().unwrap();
        let outcome = slot.lock().unwrap().clone().unwrap();
        let stall = outcome.stall.expect("a 12 s wait is a stall");
        assert_eq!(stall.at_bytes, 4);
        assert!(stall.longest >= Duration::from_secs(12));
        assert!(stall.resumed);
        assert!(outcome.complete);
    }
}
