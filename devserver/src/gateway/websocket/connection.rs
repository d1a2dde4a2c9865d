//! One client connection after the handshake. Two tasks share the socket:
//! this one reads client frames and enforces the idle timeout and the
//! maximum duration; a writer task sends what routes and `@connections`
//! queue. A client that stops reading blocks only its own writer: nothing
//! else ever waits on its socket.
//!
//! - [`Outbox::push`] never waits. Messages wait in a queue bounded in
//!   bytes ([`OUTBOUND_BUFFER_BYTES`]); a push that does not fit closes the
//!   connection (1008, logged with the connection id and why) and
//!   `@connections` answers 410 `GoneException`, as for any closed
//!   connection.
//! - A message that does not reach the client's socket within
//!   [`WRITE_TIMEOUT`] closes the connection the same way.
//! - [`Outbox::close`] (`DELETE @connections`, limits, shutdown) returns at
//!   once; the writer drops what is queued, sends the close frame if the
//!   socket takes it within [`CLOSE_GRACE`], and the socket is closed.
//! - Protocol errors close with RFC 6455's codes: 1002 for broken framing
//!   (unmasked client frames, reserved bits, unknown opcodes, stray
//!   continuations), 1007 for text that is not UTF-8.
//!   <https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1>
//!
//! Invariant: the connection is in the gateway's table exactly while the
//! reading task runs its loop; it removes itself before `$disconnect` is
//! invoked, so `@connections` answers 410 from the moment the socket is
//! closing.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::event::ConnectionFacts;
use super::{
    Connection, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, Outbound, WebSocketGateway, close_code,
};

/// Bytes of messages queued for one connection before it counts as a
/// client that does not read and is closed: eight of API Gateway's
/// largest messages (128 KB). The kernel's socket buffers hold more on top.
pub const OUTBOUND_BUFFER_BYTES: usize = 8 * MAX_MESSAGE_BYTES;
/// How long one message may take to reach the client's socket. A client
/// that reads at all takes far less; one that stopped reading is closed
/// after it even when nothing more is pushed to it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the close frame may take to go out before the socket is
/// dropped without it (a client that does not read never takes it).
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Bookkeeping charged per queued message on top of its bytes, so that
/// many tiny messages are bounded too.
const MESSAGE_OVERHEAD_BYTES: usize = 64;
/// The socket's read buffer. Small, since most connections idle; frames
/// larger than it are still read whole (the buffer grows per frame).
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Why a connection that does not read is closed, on the socket (as far as
/// it gets there), in `$disconnect` and in the log.
const SLOW_READER_REASON: &str = "Outbound buffer full: the client does not read";

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `Sec-WebSocket-Key` must be base64 of 16 bytes.
/// <https://www.rfc-editor.org/rfc/rfc6455#section-4.2.1> (item 5)
pub(super) fn is_valid_key(key: &[u8]) -> bool {
    // 16 bytes are 24 base64 characters; anything longer is refused before
    // decoding.
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16)
}

/// How a connection ends, as the reading task, the writer and
/// `@connections` ask for it. The first request wins.
#[derive(Debug, Clone)]
struct Closing {
    code: u16,
    reason: Cow<'static, str>,
    /// Send a close frame (false once the client sent one, or the socket
    /// is gone).
    send_frame: bool,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The connection is closing or closed.
    Closed,
    /// The client does not read: the connection is now closing.
    Full,
}

/// The sending side of one connection, shared by `@connections` and the
/// routes. Never waits on the client.
pub(crate) struct Outbox {
    queue: mpsc::UnboundedSender<Outbound>,
    /// Bytes (plus overhead) queued and not yet written.
    queued: AtomicUsize,
    limit: usize,
    closing: watch::Sender<Option<Closing>>,
    connection_id: String,
}

impl Outbound {
    fn cost(&self) -> usize {
        MESSAGE_OVERHEAD_BYTES
            + match self {
                Outbound::Text(t) => t.len(),
                Outbound::Binary(b) => b.len(),
            }
    }
}

impl Outbox {
    /// Queues a message, or closes the connection when the client has
    /// this much unread already.
    pub(crate) fn push(&self, message: Outbound) -> Result<(), PushError> {
        if self.closing.borrow().is_some() {
            return Err(PushError::Closed);
        }
        let cost = message.cost();
        let before = self.queued.fetch_add(cost, Ordering::SeqCst);
        // One message always fits in an empty queue.
        if before > 0 && before + cost > self.limit {
            self.queued.fetch_sub(cost, Ordering::SeqCst);
            if self.request_close(close_code::POLICY_VIOLATION, SLOW_READER_REASON, true) {
                tracing::warn!(target: "gateway", connection_id = %self.connection_id,
                    queued_bytes = before, limit = self.limit,
                    "closing 1008: {SLOW_READER_REASON}");
            }
            return Err(PushError::Full);
        }
        self.queue.send(message).map_err(|_| PushError::Closed)
    }

    /// Asks the connection to close with a close frame; returns at once.
    /// False when it was closing already.
    pub(crate) fn close(&self, code: u16, reason: &'static str) -> bool {
        self.request_close(code, reason, true)
    }

    fn request_close(&self, code: u16, reason: impl Into<Cow<'static, str>>, frame: bool) -> bool {
        let closing = Closing {
            code,
            reason: reason.into(),
            send_frame: frame,
        };
        self.closing.send_if_modified(|c| match c {
            Some(_) => false,
            None => {
                *c = Some(closing);
                true
            }
        })
    }

    fn is_closing(&self) -> bool {
        self.closing.borrow().is_some()
    }
}

pub(super) async fn run(
    gateway: Arc<WebSocketGateway>,
    facts: ConnectionFacts,
    on_upgrade: hyper::upgrade::OnUpgrade,
) {
    let Ok(upgraded) = on_upgrade.await else {
        tracing::debug!(target: "gateway", connection_id = %facts.connection_id, "upgrade failed");
        return;
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .max_message_size(Some(MAX_MESSAGE_BYTES));
    let socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let (sink, mut stream) = socket.split();

    let id = facts.connection_id.clone();
    let (queue, queued) = mpsc::unbounded_channel();
    let (closing, mut closed) = watch::channel(None);
    let (limit, write_timeout) = gateway.outbound_limits();
    let outbox = Arc::new(Outbox {
        queue,
        queued: AtomicUsize::new(0),
        limit,
        closing,
        connection_id: id.clone(),
    });
    let connection = Arc::new(Connection {
        facts: facts.clone(),
        last_active_ms: AtomicI64::new(facts.connected_at.timestamp_millis()),
        outbox: outbox.clone(),
    });
    gateway.lock().insert(id.clone(), connection.clone());
    tracing::info!(target: "gateway", connection_id = %id, source_ip = %facts.source_ip, "connected");
    let writer = tokio::spawn(write_loop(sink, queued, outbox.clone(), write_timeout));

    let settings = gateway.settings();
    let idle = Duration::from_secs(settings.idle_timeout_seconds);
    let ends_at = Instant::now() + Duration::from_secs(settings.max_connection_seconds);
    let mut idle_at = Instant::now() + idle;
    let mut stopping = gateway.stopping.subscribe();
    // Shutdown closes without `$disconnect` (the functions stop too).
    let mut shutting_down = false;

    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    idle_at = Instant::now() + idle;
                    connection.last_active_ms.store(now_ms(), Ordering::Relaxed);
                    tokio::spawn(super::handle_message(
                        gateway.clone(),
                        connection.clone(),
                        text.as_str().to_owned(),
                    ));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    idle_at = Instant::now() + idle;
                    connection.last_active_ms.store(now_ms(), Ordering::Relaxed);
                }
                Some(Ok(Message::Binary(_))) => {
                    // API Gateway does not take binary frames from clients.
                    // <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-routes-integrations.html>
                    outbox.close(close_code::UNSUPPORTED_DATA, "Binary frames are not supported");
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                        None => (
                            close_code::NO_STATUS,
                            "Client-side close frame status not set".to_owned(),
                        ),
                    };
                    // tungstenite queued the close reply; reading on drives
                    // it out.
                    outbox.request_close(code, reason, false);
                }
                Some(Ok(Message::Frame(_))) => {}
                Some(Err(tungstenite::Error::Capacity(e))) => {
                    tracing::info!(target: "gateway", connection_id = %id, "closing 1009: {e}");
                    outbox.close(close_code::TOO_BIG, "Message too big");
                }
                Some(Err(tungstenite::Error::Utf8(e))) => {
                    tracing::info!(target: "gateway", connection_id = %id, "closing 1007: text frame is not UTF-8: {e}");
                    outbox.close(close_code::INVALID_PAYLOAD, "Invalid UTF-8 in text frame");
                }
                Some(Err(tungstenite::Error::Protocol(e)))
                    if !matches!(e, ProtocolError::ResetWithoutClosingHandshake) =>
                {
                    tracing::info!(target: "gateway", connection_id = %id, "closing 1002: {e}");
                    outbox.close(close_code::PROTOCOL_ERROR, "Protocol error");
                }
                Some(Err(_)) | None => {
                    outbox.request_close(close_code::ABNORMAL, "", false);
                }
            },
            () = tokio::time::sleep_until(idle_at), if !outbox.is_closing() => {
                tracing::info!(target: "gateway", connection_id = %id, "idle for {idle:?}: closed");
                outbox.close(close_code::GOING_AWAY, "Going away");
            }
            () = tokio::time::sleep_until(ends_at), if !outbox.is_closing() => {
                tracing::info!(target: "gateway", connection_id = %id, "maximum connection duration reached: closed");
                outbox.close(close_code::GOING_AWAY, "Going away");
            }
            () = stopped(&mut stopping), if !shutting_down => {
                shutting_down = true;
                outbox.close(close_code::GOING_AWAY, "Going away");
            }
            () = closing_requested(&mut closed) => break,
        }
    }
    // From here `@connections` answers 410.
    gateway.lock().remove(&id);
    let ended = closed.borrow().clone();
    // The writer sends the close frame (bounded); then read, briefly, for
    // the client's reply, which also drives out a reply to its own close.
    let _ = tokio::time::timeout(CLOSE_GRACE * 2, writer).await;
    if ended
        .as_ref()
        .is_some_and(|c| c.code != close_code::ABNORMAL)
    {
        finish(&mut stream).await;
    }
    drop(stream);
    if shutting_down {
        return;
    }
    let (code, reason) = ended.map_or((close_code::ABNORMAL, String::new()), |c| {
        (c.code, c.reason.into_owned())
    });
    tracing::info!(target: "gateway", connection_id = %id, "disconnected ({code})");
    super::handle_disconnect(gateway, facts, code, reason).await;
}

/// Writes queued messages until the connection closes, then the close
/// frame (see the module documentation).
async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    mut queue: mpsc::UnboundedReceiver<Outbound>,
    outbox: Arc<Outbox>,
    write_timeout: Duration,
) {
    let mut closing = outbox.closing.subscribe();
    loop {
        let message = tokio::select! {
            biased;
            () = closing_requested(&mut closing) => break,
            message = queue.recv() => message,
        };
        let Some(message) = message else { break };
        let cost = message.cost();
        let written = tokio::select! {
            biased;
            // The message is abandoned part-way: RFC 6455 lets a control
            // frame (the close) come between the fragments of a message.
            () = closing_requested(&mut closing) => break,
            written = tokio::time::timeout(write_timeout, write(&mut sink, message)) => written,
        };
        outbox.queued.fetch_sub(cost, Ordering::SeqCst);
        match written {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                outbox.request_close(close_code::ABNORMAL, "", false);
                break;
            }
            Err(_) => {
                let reason = "Write timed out: the client does not read";
                if outbox.request_close(close_code::POLICY_VIOLATION, reason, true) {
                    tracing::warn!(target: "gateway", connection_id = %outbox.connection_id,
                        "closing 1008: {reason} (a message waited {write_timeout:?})");
                }
                break;
            }
        }
    }
    let closing = closing.borrow().clone();
    let Some(c) = closing.filter(|c| c.send_frame) else {
        return;
    };
    let deadline = Instant::now() + CLOSE_GRACE;
    if c.code != close_code::POLICY_VIOLATION {
        // What was queued before a `DELETE` (or a limit) still goes out
        // first, as far as the grace allows; a client that does not read
        // gets nothing more.
        while let Ok(message) = queue.try_recv() {
            match tokio::time::timeout_at(deadline, write(&mut sink, message)).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
    }
    let frame = CloseFrame {
        code: c.code.into(),
        reason: c.reason.as_ref().into(),
    };
    let _ = tokio::time::timeout_at(deadline, sink.send(Message::Close(Some(frame)))).await;
}

/// Resolves once the connection is asked to close.
async fn closing_requested(closing: &mut watch::Receiver<Option<Closing>>) {
    let _ = closing.wait_for(Option::is_some).await;
}

/// Resolves once the gateway is stopping.
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

async fn write(sink: &mut SplitSink<Socket, Message>, message: Outbound) -> Result<(), ()> {
    match message {
        Outbound::Text(text) => send_fragmented(sink, text.into_bytes(), Data::Text).await,
        Outbound::Binary(data) => send_fragmented(sink, data.to_vec(), Data::Binary).await,
    }
}

/// Sends a message in frames of at most 32 KB, as API Gateway does.
async fn send_fragmented(
    sink: &mut SplitSink<Socket, Message>,
    data: Vec<u8>,
    kind: Data,
) -> Result<(), ()> {
    if data.len() <= MAX_FRAME_BYTES {
        let message = match kind {
            Data::Binary => Message::Binary(data.into()),
            _ => match String::from_utf8(data) {
                Ok(text) => Message::text(text),
                Err(e) => Message::Binary(e.into_bytes().into()),
            },
        };
        return sink.send(message).await.map_err(|_| ());
    }
    let chunks: Vec<&[u8]> = data.chunks(MAX_FRAME_BYTES).collect();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let opcode = OpCode::Data(if i == 0 { kind } else { Data::Continue });
        let frame = Frame::message(bytes::Bytes::copy_from_slice(chunk), opcode, i == last);
        sink.feed(Message::Frame(frame)).await.map_err(|_| ())?;
    }
    sink.flush().await.map_err(|_| ())
}

/// Reads until the socket is closed, for at most a second.
async fn finish(stream: &mut SplitStream<Socket>) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}
