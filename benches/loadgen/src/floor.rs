//! `loadgen floor`: the least work any server can do for the fan-out scenario, to measure what
//! the machine itself allows. It answers just enough of Engine.IO 4 / Socket.IO 5 over
//! WebSocket for this load tool (the open packet, CONNECT, acks for `chat:join` and
//! `message:send`) and, for each `message:send`, writes one prebuilt `message:new` frame to
//! every other socket that joined — one `write` per subscriber from the publisher's task, or
//! from `--split` tasks in parallel — with no rooms, no checks, no queues, no storage.
//!
//! Not a server: it skips the `Sec-WebSocket-Accept` hash (this load tool does not check it),
//! trusts every client, keeps everyone in one chat, and drops a frame a full socket buffer will
//! not take (counted and printed at exit; at the fixed rates it is measured with, none are).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

type Members = Arc<Mutex<Vec<(u64, Arc<OwnedWriteHalf>)>>>;

static DROPPED: AtomicU64 = AtomicU64::new(0);

pub async fn serve(port: u16, split: usize) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let members: Members = Arc::default();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                next_id += 1;
                let (id, members) = (next_id, members.clone());
                tokio::spawn(async move {
                    let _ = connection(id, stream, members, split.max(1)).await;
                });
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    eprintln!("floor: {} frames dropped", DROPPED.load(Ordering::Relaxed));
    Ok(())
}

/// Writes all of `frame`, waiting for room whenever the socket's buffer is full.
async fn send(w: &OwnedWriteHalf, frame: &[u8]) -> anyhow::Result<()> {
    let mut at = 0;
    while at < frame.len() {
        match w.try_write(&frame[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => w.writable().await?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn text_frame(payload: &str) -> Vec<u8> {
    crate::ws::server_frame(0x81, payload.as_bytes())
}

/// The broadcast: one `try_write` per subscriber; a socket that cannot take the frame at once
/// loses it (counted), as a floor must not wait.
fn write_all_members(frame: &[u8], to: &[(u64, Arc<OwnedWriteHalf>)]) {
    for (_, w) in to {
        if !matches!(w.try_write(frame), Ok(n) if n == frame.len()) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn connection(
    id: u64,
    stream: TcpStream,
    members: Members,
    split: usize,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (mut r, w) = stream.into_split();
    let w = Arc::new(w);
    let mut buf = Vec::with_capacity(8192);
    // The HTTP upgrade request.
    let body_at = loop {
        if let Some(i) = buf.windows(4).position(|x| x == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 || r.read_buf(&mut buf).await? == 0 {
            bail!("no upgrade request");
        }
    };
    buf.drain(..body_at);
    send(
        &w,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .await?;
    let open = r#"0{"sid":"floor","upgrades":[],"pingInterval":300000,"pingTimeout":20000,"maxPayload":1000000}"#;
    send(&w, &text_frame(open)).await?;
    loop {
        // One masked client frame (this load tool never fragments).
        let Some((op, text)) = client_frame(&mut buf)? else {
            if r.read_buf(&mut buf).await? == 0 {
                break;
            }
            continue;
        };
        match op {
            0x8 => break,
            0x1 => {}
            _ => continue,
        }
        if text.starts_with("40") {
            send(&w, &text_frame(r#"40{"sid":"floor"}"#)).await?;
        } else if let Some(rest) = text.strip_prefix("42") {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (ack_id, body) = rest.split_at(digits);
            if body.starts_with("[\"chat:join\"") {
                members
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((id, w.clone()));
            } else if body.starts_with("[\"message:send\"") {
                let content = body
                    .split_once("\"content\":\"")
                    .and_then(|(_, c)| c.split_once('"'))
                    .map(|(c, _)| c)
                    .context("message:send without content")?;
                let frame = Arc::new(text_frame(&format!(
                    r#"42["message:new",{{"type":"text","content":"{content}"}}]"#
                )));
                let to: Vec<_> = members
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .filter(|(m, _)| *m != id)
                    .cloned()
                    .collect();
                let chunk = to.len().div_ceil(split).max(1);
                let mut parts = to.chunks(chunk);
                let mine = parts.next().unwrap_or(&[]).to_vec();
                for part in parts {
                    let (frame, part) = (frame.clone(), part.to_vec());
                    tokio::spawn(async move { write_all_members(&frame, &part) });
                }
                write_all_members(&frame, &mine);
            }
            if !ack_id.is_empty() {
                send(
                    &w,
                    &text_frame(&format!(r#"43{ack_id}[{{"ok":true,"data":{{}}}}]"#)),
                )
                .await?;
            }
        }
    }
    members
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(m, _)| *m != id);
    Ok(())
}

/// Takes one complete masked frame off the front of `buf`: `(opcode, unmasked text)`.
fn client_frame(buf: &mut Vec<u8>) -> anyhow::Result<Option<(u8, String)>> {
    let Some((_, op, header, len, mask)) = crate::ws::any_frame_header(buf)? else {
        return Ok(None);
    };
    let mask = mask.context("client frames must be masked")?;
    let Some(masked) = buf.get(header..header + len) else {
        return Ok(None);
    };
    let payload: Vec<u8> = masked
        .iter()
        .zip(mask.iter().cycle())
        .map(|(b, m)| b ^ m)
        .collect();
    buf.drain(..header + len);
    Ok(Some((op, String::from_utf8(payload)?)))
}
