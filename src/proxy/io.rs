//! Small IO adapters: replaying peeked bytes, activity stamps for idle timeouts, how a
//! client socket closes (`ConnectionFate`), and a common graceful-shutdown hook over
//! hyper's connection types.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream that first yields bytes already read from it.
pub struct Rewind<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    pub fn new(prefix: Bytes, inner: T) -> Self {
        Rewind { prefix, inner }
    }

    /// The first byte still to be read, if it was peeked.
    pub fn peek_first(&self) -> Option<u8> {
        self.prefix.first().copied()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// `AsyncWrite` for a read-side wrapper `$ty` whose `inner` field is the stream: writes
/// pass straight through.
macro_rules! delegate_async_write {
    ($ty:ident<$s:ident>) => {
        impl<$s: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $ty<$s> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
            }
        }
    };
}
pub(crate) use delegate_async_write;

delegate_async_write!(Rewind<T>);

/// Whether any byte moved since the idle watchdog last looked. Marking it is one relaxed
/// store per IO operation (reading a clock there showed up in profiles); the watchdog
/// samples it every quarter of the idle limit.
#[derive(Clone)]
pub struct ActivityClock {
    touched: Arc<AtomicBool>,
}

impl ActivityClock {
    pub fn new() -> Self {
        ActivityClock {
            touched: Arc::new(AtomicBool::new(true)),
        }
    }

    fn touch(&self) {
        self.touched.store(true, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `limit` (give or take a quarter of it).
    pub async fn idle(&self, limit: Duration) {
        let step = (limit / 4).max(Duration::from_millis(10));
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(step).await;
            if self.touched.swap(false, Ordering::Relaxed) {
                quiet = Duration::ZERO;
            } else {
                quiet += step;
                if quiet >= limit {
                    return;
                }
            }
        }
    }
}

/// How a client's TCP connection ends: with a FIN, or with an RST (SO_LINGER 0) as a
/// network reset would, once an injected `reset` asked for it. Made with the client
/// socket (`Activity` reads it when dropped) and handed to the HTTP/1.1 request handlers
/// of that connection in `ConnCtx::fate`; an HTTP/2 stream is reset by hyper with
/// RST_STREAM instead, so HTTP/2 handlers get none.
#[derive(Clone, Default)]
pub struct ConnectionFate {
    reset: Arc<AtomicBool>,
}

impl ConnectionFate {
    /// Ends the connection with a TCP reset when its socket closes.
    pub fn reset_on_close(&self) {
        self.reset.store(true, Ordering::Relaxed);
    }

    fn resets(&self) -> bool {
        self.reset.load(Ordering::Relaxed)
    }
}

/// Asks for the client connection to end with a TCP reset, where it can (`fate` is
/// `None` on HTTP/2).
pub fn reset_client(fate: Option<&ConnectionFate>) {
    if let Some(fate) = fate {
        fate.reset_on_close();
    }
}

/// The client socket: stamps an `ActivityClock` on every successful read or write, and
/// closes with an RST when its `ConnectionFate` says so. Otherwise, when hyper drops it,
/// the socket goes back to the connection's owner for a [`linger_close`].
pub struct Activity {
    /// `None` only once `Drop` has handed the socket back.
    inner: Option<tokio::net::TcpStream>,
    clock: ActivityClock,
    fate: ConnectionFate,
    back: Option<tokio::sync::oneshot::Sender<tokio::net::TcpStream>>,
}

impl Activity {
    /// The wrapped socket, and where it comes back when the wrapper is dropped.
    pub fn new(
        inner: tokio::net::TcpStream,
        clock: ActivityClock,
        fate: ConnectionFate,
    ) -> (Self, tokio::sync::oneshot::Receiver<tokio::net::TcpStream>) {
        let (back, returned) = tokio::sync::oneshot::channel();
        let io = Activity {
            inner: Some(inner),
            clock,
            fate,
            back: Some(back),
        };
        (io, returned)
    }

    fn stream(&mut self) -> std::io::Result<Pin<&mut tokio::net::TcpStream>> {
        self.inner
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if self.fate.resets() {
            // tokio deprecates SO_LINGER because a positive linger blocks the dropping
            // thread; a zero linger never waits, it just makes close() send an RST.
            #[allow(deprecated)]
            let _ = inner.set_linger(Some(std::time::Duration::ZERO));
            return;
        }
        if let Some(back) = self.back.take() {
            // No one waiting (an idle timeout): the socket just closes.
            let _ = back.send(inner);
        }
    }
}

/// Ends a client socket as nginx's lingering close does: our FIN first, then read and
/// discard what the client still sends until it closes too (at most `limit`). Closing a
/// socket with unread input sends an RST, and an RST makes the client's kernel drop
/// what the client had not read yet: the last ~100 KB of an HTTP/2 download, whose
/// reader keeps sending WINDOW_UPDATEs while it consumes them, vanished that way.
pub async fn linger_close(mut tcp: tokio::net::TcpStream, limit: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if tcp.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(limit, async {
        let mut sink = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

impl AsyncRead for Activity {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let res = match self.stream() {
            Ok(s) => s.poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if matches!(res, Poll::Ready(Ok(()))) {
            self.clock.touch();
        }
        res
    }
}

impl AsyncWrite for Activity {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = match self.stream() {
            Ok(s) => s.poll_write(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if matches!(res, Poll::Ready(Ok(_))) {
            self.clock.touch();
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let res = match self.stream() {
            Ok(s) => s.poll_write_vectored(cx, bufs),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if matches!(res, Poll::Ready(Ok(_))) {
            self.clock.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.stream() {
            Ok(s) => s.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.stream() {
            Ok(s) => s.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// hyper connection types that can finish in-flight requests and then close.
pub trait Graceful: std::future::Future {
    fn begin_graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn begin_graceful_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown()
    }
}

impl<I, S, B> Graceful for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn begin_graceful_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown()
    }
}

impl<I, S, B, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn begin_graceful_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown()
    }
}

/// Drives `conn` to its end; when `shutdown` fires, asks it to finish in-flight work first.
pub async fn drive<C: Graceful>(
    conn: C,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> C::Output {
    tokio::pin!(conn);
    tokio::select! {
        out = conn.as_mut() => return out,
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
    conn.as_mut().begin_graceful_shutdown();
    conn.await
}
