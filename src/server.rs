//! Accepting and serving connections. poem's own server sets none of the bounds a public service needs (no
//! header-read timeout, no idle timeout, no HTTP/2 stream cap, no connection cap, and an accept loop that spins
//! on `EMFILE`), so Roster serves its poem endpoint through hyper directly, with each of them:
//!
//! - at most `max_connections` open connections; past it, new ones wait in the kernel's backlog;
//! - HTTP/1 request heads must arrive whole within `header_read_timeout` (a client trickling a header line every
//!   few seconds is cut off) and fit in [`HEAD_MAX_BYTES`] (431 otherwise, from hyper, without a body) and
//!   [`HEADERS_MAX`] fields;
//! - a connection on which no byte moves in either direction for `idle_timeout` is closed, whatever it is
//!   waiting for (an idle keep-alive, a client that never reads its response, a silent HTTP/2 peer), except
//!   Roster itself working on one of its requests, which `ROSTER_REQUEST_TIMEOUT` bounds;
//! - at most `http2_max_streams` streams per HTTP/2 connection;
//! - accept errors are logged (once a second at most) and retried after a pause, never in a busy loop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::config::ConnectionSettings;
use crate::tally::Tally;

/// hyper's buffer for a request head (request line and headers), in bytes: room for the longest URL and the most
/// header bytes Roster accepts ([`crate::api::URL_MAX_BYTES`], [`crate::api::HEADER_MAX_BYTES`]), which the
/// application checks exactly. A head that does not fit is answered 431 by hyper, without a body.
pub const HEAD_MAX_BYTES: usize = 128 * 1024;

/// Most header fields in one request (hyper's default, stated here so that it is documented).
pub const HEADERS_MAX: usize = 100;

/// Descriptors kept free for the database pool, log files and the listener itself.
const RESERVED_DESCRIPTORS: u64 = 64;

/// The connection cap, lowered when the process's descriptor limit could not hold that many connections next to
/// the database pool: running out of descriptors would refuse every client, the database included.
pub fn connection_cap(wanted: usize, db_connections: u32) -> usize {
    let Some(limit) = descriptor_limit() else {
        return wanted;
    };
    let cap = cap_within(limit, wanted, db_connections);
    if cap < wanted {
        tracing::warn!(
            wanted,
            cap,
            descriptor_limit = limit,
            "the descriptor limit (ulimit -n) cannot hold ROSTER_MAX_CONNECTIONS; serving at most {cap} connections"
        );
    }
    cap
}

fn cap_within(descriptor_limit: u64, wanted: usize, db_connections: u32) -> usize {
    let available =
        descriptor_limit.saturating_sub(RESERVED_DESCRIPTORS + u64::from(db_connections));
    usize::try_from(available)
        .unwrap_or(usize::MAX)
        .clamp(1, wanted.max(1))
}

fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct it is given.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (status == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Serves `endpoint` on `listener` until `shutdown` completes, then lets open requests finish within `grace`.
pub async fn serve(
    listener: TcpListener,
    endpoint: impl Endpoint + 'static,
    settings: &ConnectionSettings,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()> {
    let endpoint = Arc::new(endpoint.map_to_response().boxed());
    let local_addr = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let builder = Arc::new(builder(settings));
    let graceful = GracefulShutdown::new();
    let mut errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        if permits.available_permits() == 0 {
            tracing::warn!(
                max_connections = settings.max_connections,
                "connection limit reached; new connections wait until one closes"
            );
        }
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    errors.pause_after(&err).await;
                    continue;
                }
            },
        };
        errors.reset();
        let _ = stream.set_nodelay(true);
        let answering = Tally::default();
        let connection = builder.serve_connection(
            TokioIo::new(Watched::new(stream, settings, answering.clone())),
            service(endpoint.clone(), local_addr.clone(), peer, answering),
        );
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, client = %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
    Ok(())
}

fn builder(settings: &ConnectionSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(HEAD_MAX_BYTES)
        .max_headers(HEADERS_MAX);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.http2_max_streams)
        .max_header_list_size(u32::try_from(HEAD_MAX_BYTES).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(100);
    builder
}

/// What poem's responses carry as a body.
type ResponseBody = http_body_util::combinators::BoxBody<bytes::Bytes, io::Error>;

/// Hands each request of one connection to the poem endpoint.
fn service(
    endpoint: Arc<poem::endpoint::BoxEndpoint<'static, poem::Response>>,
    local_addr: LocalAddr,
    peer: SocketAddr,
    answering: Tally,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = hyper::Response<ResponseBody>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<hyper::Response<ResponseBody>, std::convert::Infallible>>
             + Send,
> + Clone {
    let remote_addr = RemoteAddr(Addr::SocketAddr(peer));
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let endpoint = endpoint.clone();
        let request =
            poem::Request::from((req, local_addr.clone(), remote_addr.clone(), Scheme::HTTP));
        let answering = answering.hold(1);
        async move {
            let response: hyper::Response<ResponseBody> =
                endpoint.get_response(request).await.into();
            drop(answering);
            Ok(response)
        }
    })
}

/// Logs accept errors at most once a second, with how many there were, and pauses before the next accept: on
/// `EMFILE` (no descriptors left) retrying at once would spin a core and fail again.
#[derive(Default)]
struct AcceptErrors {
    consecutive: u32,
    unlogged: u64,
    last_logged: Option<Instant>,
}

impl AcceptErrors {
    async fn pause_after(&mut self, err: &io::Error) {
        self.consecutive = self.consecutive.saturating_add(1);
        self.unlogged += 1;
        if self
            .last_logged
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::error!(error = %err, errors = self.unlogged, "cannot accept connections");
            self.unlogged = 0;
            self.last_logged = Some(Instant::now());
        }
        // 10 ms, doubling to 1 s while the errors go on.
        let pause = Duration::from_millis(10) * 2u32.saturating_pow(self.consecutive.min(7));
        tokio::time::sleep(pause.min(Duration::from_secs(1))).await;
    }

    fn reset(&mut self) {
        self.consecutive = 0;
    }
}

/// Bytes hyper reads before it knows whether a connection speaks HTTP/1 or HTTP/2 (the HTTP/2 preface). hyper's
/// header-read timeout starts only after that, so until then the timeout is kept here.
const PROTOCOL_DETECTION_BYTES: usize = 24;

/// A connection that fails with `TimedOut` once no byte has moved in either direction for `idle` while Roster is
/// not working on one of its requests, or when its first bytes (up to the point where hyper's own header-read
/// timeout takes over) take longer than `header_read_timeout`.
struct Watched {
    stream: TcpStream,
    /// The requests of this connection Roster is working on (from the request to its answer's head): while there
    /// is one, nothing moving is Roster's doing, not the client's, and the idle timeout does not run (the request
    /// timeout bounds that time). A response being written, streamed or not, is watched again.
    answering: Tally,
    idle: Duration,
    last_activity: Instant,
    /// Until the protocol is known: when the first bytes must have arrived.
    first_bytes_due: Option<Instant>,
    bytes_read: usize,
    timer: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(stream: TcpStream, settings: &ConnectionSettings, answering: Tally) -> Self {
        let now = Instant::now();
        let first_bytes_due = now + settings.header_read_timeout;
        Self {
            stream,
            answering,
            idle: settings.idle_timeout,
            last_activity: now,
            first_bytes_due: Some(first_bytes_due),
            bytes_read: 0,
            timer: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    fn due(&self) -> Instant {
        let idle_due = self.last_activity + self.idle;
        self.first_bytes_due
            .map_or(idle_due, |first| first.min(idle_due))
    }

    fn read_some(&mut self, bytes: usize) {
        self.last_activity = Instant::now();
        self.bytes_read = self.bytes_read.saturating_add(bytes);
        if self.bytes_read >= PROTOCOL_DETECTION_BYTES {
            self.first_bytes_due = None;
        }
    }

    /// The outcome of a write: progress (or an error) counts as activity; not being ready checks the deadline.
    fn wrote(
        &mut self,
        written: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Pending => self.check_deadline(cx).map(Err),
            ready => {
                self.last_activity = Instant::now();
                ready
            }
        }
    }

    /// Called when the stream is not ready: fails once a deadline has passed, otherwise makes sure the task
    /// wakes up when it would.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let due = self.due();
            if self.timer.deadline() != due {
                // Activity since the timer was armed: move it rather than re-arming on every byte.
                self.timer.as_mut().reset(due);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if self.first_bytes_due.is_none() && self.answering.count() > 0 => {
                    // Roster is still working on a request: the connection is not idle.
                    self.last_activity = Instant::now();
                }
                Poll::Ready(()) if Instant::now() >= self.due() => {
                    let what = if self.first_bytes_due.is_some() {
                        "no request within the header-read timeout"
                    } else {
                        "connection idle for too long"
                    };
                    return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, what));
                }
                Poll::Ready(()) => continue,
            }
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => this.check_deadline(cx).map(Err),
            ready => {
                this.read_some(buf.filled().len() - before);
                ready
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(written, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(written, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_pool_and_the_process() {
        assert_eq!(cap_within(1_048_576, 1024, 16), 1024);
        assert_eq!(cap_within(256, 1024, 16), 256 - 64 - 16);
        assert_eq!(cap_within(50, 1024, 16), 1, "never zero");
    }

    #[tokio::test(start_paused = true)]
    async fn accept_errors_pause_longer_and_longer_up_to_a_second() {
        let mut errors = AcceptErrors::default();
        let err = io::Error::from_raw_os_error(libc::EMFILE);
        let mut pauses = Vec::new();
        for _ in 0..10 {
            let started = Instant::now();
            errors.pause_after(&err).await;
            pauses.push(started.elapsed().as_millis());
        }
        assert_eq!(pauses, [20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]);
        errors.reset();
        let started = Instant::now();
        errors.pause_after(&err).await;
        assert_eq!(started.elapsed().as_millis(), 20, "a success starts over");
    }
}
