//! One client connection after the handshake: a single task owns the
//! socket, reads client frames, writes what routes and `@connections` send,
//! and enforces the idle timeout and the maximum duration.
//!
//! Invariant: the connection is in the gateway's table exactly while this
//! task runs its loop; it removes itself before `$disconnect` is invoked,
//! so `@connections` answers 410 from the moment the socket is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::event::ConnectionFacts;
use super::{
    Connection, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, Outbound, WebSocketGateway, close_code,
};

/// Messages queued for one connection before `@connections` waits.
const OUTBOUND_QUEUE: usize = 16;
/// The socket's read buffer. Small, since most connections idle; frames
/// larger than it are still read whole (the buffer grows per frame).
const READ_BUFFER_BYTES: usize = 4 * 1024;

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
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
    let mut socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;

    let (outbound, mut queue) = mpsc::channel(OUTBOUND_QUEUE);
    let connection = Arc::new(Connection {
        facts: facts.clone(),
        last_active_ms: AtomicI64::new(facts.connected_at.timestamp_millis()),
        outbound,
    });
    let id = facts.connection_id.clone();
    gateway.lock().insert(id.clone(), connection.clone());
    tracing::info!(target: "gateway", connection_id = %id, source_ip = %facts.source_ip, "connected");

    let settings = gateway.settings();
    let idle = Duration::from_secs(settings.idle_timeout_seconds);
    let ends_at = Instant::now() + Duration::from_secs(settings.max_connection_seconds);
    let mut idle_at = Instant::now() + idle;
    let mut stopping = gateway.stopping.subscribe();

    // Why the connection ended, as `$disconnect` reports it; `None` when
    // the stack is shutting down (no `$disconnect` then).
    let ended: Option<(u16, String)> = loop {
        tokio::select! {
            frame = socket.next() => match frame {
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
                    let reason = "Binary frames are not supported";
                    close(&mut socket, close_code::UNSUPPORTED_DATA, reason).await;
                    break Some((close_code::UNSUPPORTED_DATA, reason.to_owned()));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                        None => (
                            close_code::NO_STATUS,
                            "Client-side close frame status not set".to_owned(),
                        ),
                    };
                    // tungstenite queued the close reply; drive it out.
                    finish(&mut socket).await;
                    break Some((code, reason));
                }
                Some(Ok(Message::Frame(_))) => {}
                Some(Err(tungstenite::Error::Capacity(e))) => {
                    let reason = "Message too big";
                    tracing::info!(target: "gateway", connection_id = %id, "closing 1009: {e}");
                    close(&mut socket, close_code::TOO_BIG, reason).await;
                    break Some((close_code::TOO_BIG, reason.to_owned()));
                }
                Some(Err(_)) | None => break Some((close_code::ABNORMAL, String::new())),
            },
            out = queue.recv() => match out {
                Some(Outbound::Text(text)) => {
                    if send_fragmented(&mut socket, text.into_bytes(), Data::Text).await.is_err() {
                        break Some((close_code::ABNORMAL, String::new()));
                    }
                }
                Some(Outbound::Binary(data)) => {
                    if send_fragmented(&mut socket, data.to_vec(), Data::Binary).await.is_err() {
                        break Some((close_code::ABNORMAL, String::new()));
                    }
                }
                Some(Outbound::Close { code, reason }) => {
                    close(&mut socket, code, reason).await;
                    break Some((code, reason.to_owned()));
                }
                // The connection holds a sender, so the queue stays open.
                None => break Some((close_code::ABNORMAL, String::new())),
            },
            () = tokio::time::sleep_until(idle_at) => {
                let reason = "Going away";
                close(&mut socket, close_code::GOING_AWAY, reason).await;
                tracing::info!(target: "gateway", connection_id = %id, "idle for {idle:?}: closed");
                break Some((close_code::GOING_AWAY, reason.to_owned()));
            }
            () = tokio::time::sleep_until(ends_at) => {
                let reason = "Going away";
                close(&mut socket, close_code::GOING_AWAY, reason).await;
                tracing::info!(target: "gateway", connection_id = %id, "maximum connection duration reached: closed");
                break Some((close_code::GOING_AWAY, reason.to_owned()));
            }
            () = stopped(&mut stopping) => {
                close(&mut socket, close_code::GOING_AWAY, "Going away").await;
                break None;
            }
        }
    };
    gateway.lock().remove(&id);
    drop(socket);
    let Some((code, reason)) = ended else {
        return;
    };
    tracing::info!(target: "gateway", connection_id = %id, "disconnected ({code})");
    super::handle_disconnect(gateway, facts, code, reason).await;
}

/// Resolves once the gateway is stopping.
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// Sends a message in frames of at most 32 KB, as API Gateway does.
async fn send_fragmented(socket: &mut Socket, data: Vec<u8>, kind: Data) -> Result<(), ()> {
    if data.len() <= MAX_FRAME_BYTES {
        let message = match kind {
            Data::Binary => Message::Binary(data.into()),
            _ => match String::from_utf8(data) {
                Ok(text) => Message::text(text),
                Err(e) => Message::Binary(e.into_bytes().into()),
            },
        };
        return socket.send(message).await.map_err(|_| ());
    }
    let chunks: Vec<&[u8]> = data.chunks(MAX_FRAME_BYTES).collect();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let opcode = OpCode::Data(if i == 0 { kind } else { Data::Continue });
        let frame = Frame::message(bytes::Bytes::copy_from_slice(chunk), opcode, i == last);
        socket.feed(Message::Frame(frame)).await.map_err(|_| ())?;
    }
    socket.flush().await.map_err(|_| ())
}

/// Sends a close frame and waits (briefly) for the client's reply.
async fn close(socket: &mut Socket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        finish(socket).await;
    }
}

/// Reads until the socket is closed, for at most a second.
async fn finish(socket: &mut Socket) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}
