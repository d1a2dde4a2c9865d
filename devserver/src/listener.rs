//! The accept loop every listener runs (REST API, WebSocket API, AWS
//! endpoint, frontend): HTTP/1.1 served by hyper with the limits a slow or
//! hostile client must not get past.
//!
//! - At most [`Limits::max_connections`] open connections per listener,
//!   upgraded WebSocket connections included (the permit travels with the
//!   socket). Past the bound new connections wait in the kernel's backlog
//!   until one closes, and one log line says so per burst.
//! - A request's head must arrive within [`Limits::header_read_timeout`];
//!   hyper's timer also runs while a keep-alive connection idles between
//!   requests, so a silent connection is closed after it too, as API
//!   Gateway closes idle connections.
//! - A request's body must arrive within [`Limits::body_read_timeout`] of
//!   its head; past it, reading the body fails ([`BodyTimedOut`]) and the
//!   handler answers (REST: 400) with the connection closed.
//! - Headers over [`MAX_HEADER_BYTES`] are refused by hyper (431) before
//!   any handler runs; the REST API checks API Gateway's own, smaller quota.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// Open connections per listener. A laptop's browsers, SDK clients and
/// functions need a few dozen; the WebSocket benchmark holds 1,000. The
/// bound keeps a flood of idle or half-sent connections from taking every
/// file handle of the process (the soft limit is often 1,024).
pub const MAX_CONNECTIONS: usize = 2048;

/// How long a client may take to send a request's head, and how long a
/// keep-alive connection may stay silent between requests. API Gateway's
/// edge closes idle connections too; slowloris clients are closed after it.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to send a request's body, from the end of
/// its head. The largest body API Gateway takes (10 MB) crosses loopback
/// in milliseconds; API Gateway's own integration timeout is 29 s.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request head hyper reads (request line + headers). Above API
/// Gateway's 10,240-byte quota, which the REST API checks itself with
/// API Gateway's answer; this only bounds what any listener buffers.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// hyper's read buffer per connection: heads up to [`MAX_HEADER_BYTES`],
/// body bytes in passing.
const MAX_BUFFER_BYTES: usize = 128 * 1024;

/// How long an `accept` error (out of file handles) pauses the loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The limits of one listener. In-process tests shorten them.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// WebSocket connections: bytes of messages queued for a client that
    /// does not read before the connection is closed.
    pub websocket_outbound_bytes: usize,
    /// WebSocket connections: how long one message may take to reach a
    /// client's socket before the connection is closed.
    pub websocket_write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            websocket_outbound_bytes: crate::gateway::websocket::OUTBOUND_BUFFER_BYTES,
            websocket_write_timeout: crate::gateway::websocket::WRITE_TIMEOUT,
        }
    }
}

/// Serves `router` on `listener` until `stop` turns true; connections then
/// finish their request in flight and close.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Logged once when the bound is reached, again only after it has been
    // left: one line per burst, not one per waiting connection.
    let mut at_bound = false;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                if at_bound && slots.available_permits() > 0 {
                    at_bound = false;
                    tracing::info!(listener = %address, "below its connection bound again: accepting");
                }
                permit
            }
            Err(_) => {
                if !at_bound {
                    at_bound = true;
                    tracing::warn!(listener = %address, bound = limits.max_connections,
                        "connection bound reached: new connections wait until one closes");
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                    () = stopped(&mut stop) => return,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE / ENFILE: the process is out of file handles.
                    // Pause instead of spinning; open connections go on.
                    tracing::warn!(listener = %address, "accept failed: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => return,
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(
            tcp,
            peer,
            permit,
            router.clone(),
            limits.clone(),
            stop.clone(),
        ));
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let body_timeout = limits.body_read_timeout;
    let sniffer = Arc::new(HeadSniffer::default());
    let heads = sniffer.clone();
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if heads.take_ambiguous() {
            request.extensions_mut().insert(AmbiguousLength);
        }
        // The next head is watched once this request's body is read; an
        // upgraded connection carries no more heads.
        let rearm = (!request.headers().contains_key(http::header::UPGRADE)).then(|| heads.clone());
        let request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout, rearm)));
        router.clone().oneshot(request)
    });
    let io = TokioIo::new(Permitted {
        tcp,
        sniffer,
        _permit: permit,
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUFFER_BYTES)
        .max_header_size(MAX_HEADER_BYTES);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %peer, "connection ended: {e}");
            }
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            // A request in flight finishes; a client that never reads its
            // answer does not hold shutdown up.
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

/// Resolves once the stack is stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A client socket holding its listener's connection slot: the slot is
/// free again when the socket is dropped, after an upgrade too.
struct Permitted {
    tcp: TcpStream,
    sniffer: Arc<HeadSniffer>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if polled.is_ready() {
            self.sniffer.read(&buf.filled()[before..]);
        }
        polled
    }
}

/// Set on a request whose head carried both `Transfer-Encoding` and
/// `Content-Length`. hyper takes the chunked body and drops the length
/// before any handler sees the headers (RFC 9112 §6.3 allows that, or
/// refusing the request); the REST API refuses it, so it must be told.
#[derive(Debug, Clone, Copy)]
pub struct AmbiguousLength;

/// Watches the bytes of each request head as hyper reads them, for the one
/// thing hyper hides: both body lengths given. Only heads are kept (at most
/// [`MAX_HEADER_BYTES`]), never bodies or WebSocket frames.
#[derive(Default)]
struct HeadSniffer {
    state: std::sync::Mutex<Sniffing>,
}

#[derive(Default)]
enum Sniffing {
    /// Collecting a head.
    #[default]
    Start,
    Head(Vec<u8>),
    /// Past a head: its verdict, until the request takes it; then the body.
    Done {
        ambiguous: bool,
    },
}

impl HeadSniffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sniffing> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut state = self.lock();
        if matches!(*state, Sniffing::Start) {
            *state = Sniffing::Head(Vec::new());
        }
        let Sniffing::Head(head) = &mut *state else {
            return;
        };
        head.extend_from_slice(bytes);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let ambiguous = both_lengths(&head[..end]);
            *state = Sniffing::Done { ambiguous };
        } else if head.len() > MAX_HEADER_BYTES {
            // hyper refuses it (431); nothing to tell.
            *state = Sniffing::Done { ambiguous: false };
        }
    }

    /// The verdict on the head just parsed.
    fn take_ambiguous(&self) -> bool {
        match &mut *self.lock() {
            Sniffing::Done { ambiguous } => std::mem::take(ambiguous),
            _ => false,
        }
    }

    /// The request's body has been read: what comes next is a head.
    fn rearm(&self) {
        *self.lock() = Sniffing::Start;
    }
}

fn both_lengths(head: &[u8]) -> bool {
    let has = |name: &[u8]| {
        head.split(|b| *b == b'\n').skip(1).any(|line| {
            line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name)
                && line[name.len()] == b':'
        })
    };
    has(b"transfer-encoding") && has(b"content-length")
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// The body of a request did not arrive within the listener's body read
/// timeout.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    /// Told when the body has been read whole.
    rearm: Option<Arc<HeadSniffer>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration, rearm: Option<Arc<HeadSniffer>>) -> DeadlineBody {
        use hyper::body::Body as _;
        let mut body = DeadlineBody {
            deadline: None,
            inner,
            timeout,
            rearm,
        };
        if body.inner.is_end_stream() {
            // A body already complete (none, or empty) needs no timer.
            body.ended();
        } else {
            body.deadline = Some(Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        }
        body
    }

    fn ended(&mut self) {
        self.deadline = None;
        if let Some(sniffer) = self.rearm.take() {
            sniffer.rearm();
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended();
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(Into::into))),
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.deadline = None;
                Poll::Ready(Some(Err(BodyTimedOut(this.timeout).into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request body could not be read, as a handler answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFailure {
    /// Over the handler's limit: 413.
    TooLarge,
    /// Slower than the body read timeout.
    TimedOut,
    /// Broken framing (bad chunk size, a chunk longer than declared), or the
    /// client closed before the end: 400.
    Malformed,
}

/// Classifies the error of `axum::body::to_bytes` (or any body read).
pub fn body_failure(error: &axum::Error) -> BodyFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return BodyFailure::TooLarge;
        }
        if e.is::<BodyTimedOut>() {
            return BodyFailure::TimedOut;
        }
        source = e.source();
    }
    BodyFailure::Malformed
}

/// How much of a too-large body is read (and dropped) before it is
/// answered: a client still sending when the answer comes would see a
/// reset connection instead of the service's error. Past it the connection
/// is closed.
pub const MAX_DRAINED_BYTES: usize = 64 * 1024 * 1024;

/// Why [`read_body`] returned no body.
#[derive(Debug, thiserror::Error)]
pub enum ReadBodyError {
    #[error("{size} byte body is over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Broken(axum::Error, BodyFailure),
}

impl ReadBodyError {
    pub fn failure(&self) -> BodyFailure {
        match self {
            ReadBodyError::TooLarge { .. } => BodyFailure::TooLarge,
            ReadBodyError::Broken(_, failure) => *failure,
        }
    }
}

/// Reads a body of at most `limit` bytes into one buffer sized from
/// `Content-Length` (no copies while it grows, no second copy to join
/// chunks); a larger one is read on and dropped, up to
/// [`MAX_DRAINED_BYTES`], so the client gets the answer.
pub async fn read_body(
    body: Body,
    content_length: Option<usize>,
    limit: usize,
) -> Result<bytes::Bytes, ReadBodyError> {
    use http_body_util::BodyExt;
    let mut body = body;
    // Declared too large: nothing is kept while it is read.
    let keep = content_length.is_none_or(|len| len <= limit);
    let mut payload = match content_length {
        Some(len) if keep && len >= MAPPED_BODY_BYTES => Buffer::mapped(len),
        Some(len) if keep => Buffer::Heap(Vec::with_capacity(len)),
        _ => Buffer::Heap(Vec::new()),
    };
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let failure = body_failure(&e);
            ReadBodyError::Broken(e, failure)
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let at = total;
        total += data.len();
        if keep && total <= limit {
            payload.write(at, &data);
        } else if total > MAX_DRAINED_BYTES {
            break;
        } else {
            payload = Buffer::Heap(Vec::new());
        }
    }
    if total > limit {
        return Err(ReadBodyError::TooLarge { size: total, limit });
    }
    Ok(payload.into_bytes(total))
}

/// Bodies of at least this size (declared) are read into a memory map of
/// their own rather than the heap: glibc's malloc keeps the memory of
/// large freed buffers in its arenas, where the resident size of the
/// process stays high long after the request (see benches/memory.rs);
/// an unmapped buffer goes back to the system at once.
const MAPPED_BODY_BYTES: usize = 256 * 1024;

/// Where a body is read to.
enum Buffer {
    Heap(Vec<u8>),
    Mapped(memmap2::MmapMut),
}

impl Buffer {
    fn mapped(len: usize) -> Buffer {
        match memmap2::MmapMut::map_anon(len) {
            Ok(map) => Buffer::Mapped(map),
            Err(_) => Buffer::Heap(Vec::with_capacity(len)),
        }
    }

    fn write(&mut self, at: usize, data: &[u8]) {
        match self {
            Buffer::Heap(v) => v.extend_from_slice(data),
            Buffer::Mapped(map) => match map.get_mut(at..at + data.len()) {
                Some(slot) => slot.copy_from_slice(data),
                // More than declared (hyper does not let that happen):
                // go on in the heap.
                None => {
                    let mut v = map[..at].to_vec();
                    v.extend_from_slice(data);
                    *self = Buffer::Heap(v);
                }
            },
        }
    }

    fn into_bytes(self, len: usize) -> bytes::Bytes {
        match self {
            Buffer::Heap(v) => bytes::Bytes::from(v),
            Buffer::Mapped(map) => {
                let len = len.min(map.len());
                bytes::Bytes::from_owner(map).slice(..len)
            }
        }
    }
}

/// A request's `Content-Length`, when it has a valid one.
pub fn content_length(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
