//! A minimal RFC 6455 WebSocket client for the load tool: the opening handshake, masked frames
//! out, frames in (fragments joined, pings reported, close), nothing else — no extensions, no
//! TLS.
//!
//! Why not tungstenite: on a two-core machine the load tool shares the CPU with the server under
//! test, so every cycle it spends per delivery is taken from the server, and more from a server
//! that uses both cores than from a single-threaded one. tungstenite's read path zero-fills its
//! read buffer before each read, reads once more to see `WouldBlock` after each short read, and
//! allocates a `String` per message; this one reads into a reused buffer, does one `recvmsg` per
//! wake-up when the socket is drained, and hands the text out in place.
//!
//! Each read also asks the kernel for the time the data reached this socket (`SO_TIMESTAMPNS`):
//! the arrival time before the load tool's own scheduling, reported beside the time the load tool
//! got around to reading it.

use std::io::{self, IoSliceMut, Write as _};
use std::net::TcpStream as StdTcp;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, sockopt};
use nix::sys::time::TimeSpec;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Initial read buffer: our frames are small; a burst of them fits.
const READ_BUFFER: usize = 8 * 1024;
/// No frame this tool expects comes near this; larger is a broken peer.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// What `Reader::next` hands out.
pub enum Msg<'a> {
    Text(&'a str),
    Binary,
    Ping(Vec<u8>),
    Close,
}

pub struct Reader {
    io: Arc<AsyncFd<StdTcp>>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message being joined: its opcode and bytes so far.
    frag: Option<(u8, Vec<u8>)>,
    /// The last fragmented message, once whole (handed out from here).
    joined: Vec<u8>,
    /// Kernel arrival time (µs since the Unix epoch) of the data the last read returned.
    arrival_unix_us: Option<u64>,
}

pub struct Writer {
    io: Arc<AsyncFd<StdTcp>>,
    mask: [u8; 4],
}

/// Opens `ws://{addr}{path}` (`addr` = `host:port`).
pub async fn connect(addr: &str, path: &str) -> anyhow::Result<(Reader, Writer)> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    // Nagle off, as a browser's WebSocket has it: small frames must not wait for ACKs.
    stream.set_nodelay(true)?;
    // The key need not be secret: servers only echo a hash of it, which we do not check.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: c3dpdGNoYm9hcmQtbG9hZA==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(1024);
    let body_at = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 16 * 1024 {
            bail!("handshake response too long");
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("closed during the WebSocket handshake");
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let status = String::from_utf8_lossy(&head[..head.len().min(64)]).into_owned();
    if !status.starts_with("HTTP/1.1 101") {
        bail!(
            "no WebSocket upgrade: {}",
            status.lines().next().unwrap_or("")
        );
    }
    let std = stream.into_std()?;
    socket::setsockopt(&std, sockopt::ReceiveTimestampns, &true)?;
    // Deprecated because a type whose fd can close while registered would be unsound; a
    // `TcpStream` owned by the `AsyncFd` closes only after `AsyncFd`'s drop deregisters it.
    // (`register`, its replacement, is an `unsafe fn`, and this workspace forbids unsafe code.)
    #[allow(deprecated)]
    let io = Arc::new(AsyncFd::new(std)?);
    let mut buf = vec![0u8; READ_BUFFER];
    let leftover = &head[body_at..];
    if leftover.len() > buf.len() {
        buf.resize(leftover.len(), 0);
    }
    buf[..leftover.len()].copy_from_slice(leftover);
    let mask = (now_unix_us() as u32 ^ (io.as_raw_fd() as u32).rotate_left(16)).to_be_bytes();
    Ok((
        Reader {
            io: io.clone(),
            buf,
            start: 0,
            end: leftover.len(),
            frag: None,
            joined: Vec::new(),
            arrival_unix_us: None,
        },
        Writer { io, mask },
    ))
}

fn now_unix_us() -> u64 {
    UNIX_EPOCH
        .elapsed()
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Where a complete message sits once parsed, so that the borrow is taken after the loop.
enum Ready {
    Buf(usize, usize, u8),
    Frag(u8),
    Ping(Vec<u8>),
    Close,
}

impl Reader {
    /// The next message, and the kernel's arrival time (µs since the Unix epoch) of the read
    /// that completed it (several messages read at once share it); errors when the connection
    /// breaks or the peer breaks the protocol.
    pub async fn next(&mut self) -> io::Result<(Msg<'_>, Option<u64>)> {
        let ready = loop {
            match self.parse()? {
                Some(r) => break r,
                None => self.fill().await?,
            }
        };
        let arrival = self.arrival_unix_us;
        let msg = match ready {
            Ready::Buf(from, to, op) => message(op, &self.buf[from..to])?,
            Ready::Frag(op) => {
                self.joined = self.frag.take().map(|(_, b)| b).unwrap_or_default();
                message(op, &self.joined)?
            }
            Ready::Ping(p) => Msg::Ping(p),
            Ready::Close => Msg::Close,
        };
        Ok((msg, arrival))
    }

    /// One complete message from the buffer, if there is one; control frames and fragments are
    /// consumed along the way.
    fn parse(&mut self) -> io::Result<Option<Ready>> {
        loop {
            let avail = &self.buf[self.start..self.end];
            let Some((fin, op, header, len)) = frame_header(avail)? else {
                return Ok(None);
            };
            if avail.len() < header + len {
                if self.buf.len() < header + len {
                    self.buf.resize(header + len, 0);
                }
                return Ok(None);
            }
            let (from, to) = (self.start + header, self.start + header + len);
            self.start = to;
            match op {
                0x1 | 0x2 if fin => return Ok(Some(Ready::Buf(from, to, op))),
                0x1 | 0x2 => self.frag = Some((op, self.buf[from..to].to_vec())),
                0x0 => {
                    let Some((first_op, bytes)) = self.frag.as_mut() else {
                        return Err(invalid("continuation without a first fragment"));
                    };
                    bytes.extend_from_slice(&self.buf[from..to]);
                    if fin {
                        return Ok(Some(Ready::Frag(*first_op)));
                    }
                }
                0x8 => return Ok(Some(Ready::Close)),
                0x9 => return Ok(Some(Ready::Ping(self.buf[from..to].to_vec()))),
                0xA => {}
                _ => return Err(invalid("unknown opcode")),
            }
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            let mut guard = self.io.readable().await?;
            let room = self.buf.len() - self.end;
            match recv_stamped(guard.get_inner(), &mut self.buf[self.end..]) {
                Ok((0, _)) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok((n, at)) => {
                    // A short read from a TCP socket took everything queued. Data that lands
                    // after it raises a new edge-triggered event, and tokio does not clear a
                    // readiness that the driver renewed since this guard was taken — so clearing
                    // here is safe and saves the read that would only return WouldBlock.
                    if n < room {
                        guard.clear_ready();
                    }
                    self.end += n;
                    if at.is_some() {
                        self.arrival_unix_us = at;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn message(op: u8, bytes: &[u8]) -> io::Result<Msg<'_>> {
    if op == 0x2 {
        return Ok(Msg::Binary);
    }
    std::str::from_utf8(bytes)
        .map(Msg::Text)
        .map_err(|_| invalid("text frame is not UTF-8"))
}

/// `(fin, opcode, header length, payload length)` of the server frame at the start of `b`, if
/// its header is complete.
fn frame_header(b: &[u8]) -> io::Result<Option<(bool, u8, usize, usize)>> {
    if b.get(1).is_some_and(|b1| b1 & 0x80 != 0) {
        return Err(invalid("server frames must not be masked"));
    }
    Ok(any_frame_header(b)?.map(|(fin, op, header, len, _)| (fin, op, header, len)))
}

/// `(fin, opcode, header length, payload length, mask key)`.
pub type Header = (bool, u8, usize, usize, Option<[u8; 4]>);

/// The header of any frame at the start of `b`, if it is complete (mask key included).
pub fn any_frame_header(b: &[u8]) -> io::Result<Option<Header>> {
    let [b0, b1, rest @ ..] = b else {
        return Ok(None);
    };
    let (ext, len) = match b1 & 0x7f {
        126 => match rest {
            [a, b, ..] => (2, usize::from(u16::from_be_bytes([*a, *b]))),
            _ => return Ok(None),
        },
        127 => match rest.first_chunk::<8>() {
            Some(l) => (
                8,
                usize::try_from(u64::from_be_bytes(*l)).unwrap_or(usize::MAX),
            ),
            None => return Ok(None),
        },
        n => (0, usize::from(n)),
    };
    if len > MAX_FRAME {
        return Err(invalid("frame too large"));
    }
    let mask = if b1 & 0x80 != 0 {
        match rest[ext..].first_chunk::<4>() {
            Some(m) => Some(*m),
            None => return Ok(None),
        }
    } else {
        None
    };
    let header = 2 + ext + if mask.is_some() { 4 } else { 0 };
    Ok(Some((b0 & 0x80 != 0, b0 & 0x0f, header, len, mask)))
}

/// One `recvmsg`, with the kernel's arrival time of the data when the kernel gives one.
fn recv_stamped(s: &StdTcp, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(TimeSpec);
    let msg = socket::recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
    let mut at = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmTimestampns(ts) = c {
            let d = Duration::from(ts);
            at = u64::try_from(d.as_micros()).ok();
        }
    }
    Ok((msg.bytes, at))
}

impl Writer {
    pub async fn text(&self, text: &str) -> io::Result<()> {
        self.frame(0x1, text.as_bytes()).await
    }

    pub async fn pong(&self, payload: &[u8]) -> io::Result<()> {
        self.frame(0xA, payload).await
    }

    pub async fn close(&self) -> io::Result<()> {
        self.frame(0x8, &[]).await
    }

    /// Several text frames in one write, as a client with a write buffer sends what it has
    /// ready at once.
    pub async fn texts<S: AsRef<str>>(&self, texts: &[S]) -> io::Result<()> {
        let mut f = Vec::with_capacity(texts.iter().map(|t| t.as_ref().len() + 14).sum());
        for t in texts {
            self.push_frame(&mut f, 0x1, t.as_ref().as_bytes());
        }
        self.write_all(&f).await
    }

    fn push_frame(&self, f: &mut Vec<u8>, op: u8, payload: &[u8]) {
        push_header(f, 0x80 | op, 0x80, payload.len());
        f.extend_from_slice(&self.mask);
        f.extend(
            payload
                .iter()
                .zip(self.mask.iter().cycle())
                .map(|(b, m)| b ^ m),
        );
    }

    async fn frame(&self, op: u8, payload: &[u8]) -> io::Result<()> {
        let mut f = Vec::with_capacity(payload.len() + 14);
        self.push_frame(&mut f, op, payload);
        self.write_all(&f).await
    }

    async fn write_all(&self, f: &[u8]) -> io::Result<()> {
        let mut written = 0;
        while written < f.len() {
            let mut guard = self.io.writable().await?;
            match guard.try_io(|s| (&mut s.get_ref()).write(&f[written..])) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => written += n,
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}

/// A frame header: `first` (FIN and opcode), then the length with `mask_bit` (0x80 from a
/// client, 0 from a server) in its first byte.
fn push_header(f: &mut Vec<u8>, first: u8, mask_bit: u8, len: usize) {
    f.push(first);
    match len {
        n if n < 126 => f.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
}

/// An unmasked frame as a server sends it (`first`: FIN and opcode).
pub fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 10);
    push_header(&mut f, first, 0, payload.len());
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::{Msg, connect, frame_header, server_frame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A scripted server on loopback: handshake, then frames split across writes, a fragmented
    /// message with a ping between its parts, both extended lengths; the client's pong must come
    /// back masked.
    #[tokio::test]
    async fn reads_what_a_server_sends() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let big = "x".repeat(70_000);
        let mid = "y".repeat(300);
        let (big2, mid2) = (big.clone(), mid.clone());
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await?;
            let mut req = Vec::new();
            while !req.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await?;
                req.push(b[0]);
            }
            let mut out =
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
            out.extend(server_frame(0x81, b"hello")); // in the handshake's read
            s.write_all(&out).await?;
            let mut rest = server_frame(0x01, b"frag-"); // text, not final
            rest.extend(server_frame(0x89, b"p1"));
            rest.extend(server_frame(0x80, b"ment"));
            rest.extend(server_frame(0x81, mid2.as_bytes()));
            rest.extend(server_frame(0x81, big2.as_bytes()));
            for chunk in rest.chunks(1000) {
                s.write_all(chunk).await?;
                s.flush().await?;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let mut pong = [0u8; 8];
            s.read_exact(&mut pong).await?;
            s.write_all(&server_frame(0x88, b"")).await?;
            anyhow::Ok(pong)
        });
        let (mut reader, writer) = connect(&addr, "/").await?;
        let mut got = Vec::new();
        loop {
            let step = tokio::time::timeout(std::time::Duration::from_secs(5), reader.next());
            match step.await?? {
                (Msg::Text(t), _) => got.push(t.to_owned()),
                (Msg::Ping(p), _) => {
                    got.push(format!("ping {}", String::from_utf8_lossy(&p)));
                    writer.pong(&p).await?;
                }
                (Msg::Binary, _) => got.push("binary".into()),
                (Msg::Close, _) => break,
            }
        }
        assert_eq!(
            got,
            ["hello", "ping p1", "frag-ment", mid.as_str(), big.as_str()]
        );
        let pong = server.await??;
        assert_eq!(pong[..2], [0x8A, 0x82]); // final pong, masked, 2 bytes
        let mask = &pong[2..6];
        let unmasked: Vec<u8> = pong[6..].iter().zip(mask).map(|(b, m)| b ^ m).collect();
        assert_eq!(unmasked, b"p1");
        Ok(())
    }

    #[test]
    fn headers_parse() {
        let h = |b: &[u8]| frame_header(b).ok();
        assert_eq!(h(&[0x81]), Some(None));
        assert_eq!(h(&[0x81, 5]), Some(Some((true, 1, 2, 5))));
        assert_eq!(h(&[0x01, 126, 1, 0]), Some(Some((false, 1, 4, 256))));
        assert_eq!(h(&[0x81, 126, 1]), Some(None));
        assert_eq!(h(&[0x81, 0x85]), None);
    }
}
