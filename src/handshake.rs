//! What a Socket.IO handshake request keeps. engineioxide stores the request's parts (URI,
//! headers, extensions) in every socket for the socket's whole life, so whatever they hold is
//! paid for by every idle connection.

use axum::http::{HeaderMap, HeaderName, Request, header};

/// hyper parses a request's URI and header values as views into the connection's read buffer,
/// and engineioxide keeps the handshake request's parts for the socket's whole life: every idle
/// socket pinned its 8 KiB handshake buffer. Copying those few hundred bytes out lets the
/// buffer go as soon as the connection is upgraded.
///
/// It runs in the serve loop, before the router, on every request: axum's router keeps another
/// view of the URI in the request's extensions (`OriginalUri`), so copies made inside the router
/// (in [`keep_socket_headers`], say) come too late. Tried twice, measured both times: ≈4 KB more
/// per idle connection (8.6 → 12.8 KB with `loadgen idle`, 5,000 connections).
pub fn detach_from_read_buffer<B>(req: axum::http::Request<B>) -> axum::http::Request<B> {
    use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
    let (mut parts, body) = req.into_parts();
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let owned = HeaderName::from_bytes(name.as_str().as_bytes())
            .ok()
            .zip(HeaderValue::from_bytes(value.as_bytes()).ok());
        match owned {
            Some((name, mut owned_value)) => {
                owned_value.set_sensitive(value.is_sensitive());
                headers.append(name, owned_value);
            }
            None => {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    parts.headers = headers;
    axum::http::Request::from_parts(parts, body)
}

/// The Socket.IO path; the engine's default, which `app` does not change.
const SOCKET_IO_PATH: &str = "/socket.io";

/// Headers a Socket.IO request keeps once the CORS and trace layers have seen it. The engine
/// reads `sec-websocket-key` (WebSocket handshake) and `content-type` (polling posts); the rest
/// say where the client connects from, for logs and limits a handler may add. Everything else —
/// cookies, user agent, accept-* — went unread but stayed in memory for the socket's life
/// (≈0.5 KB from a load tool, more from a browser). No handler reads request headers today:
/// authentication is the handshake's `auth` object (docs/protocol.md).
const SOCKET_HEADERS: [HeaderName; 6] = [
    header::SEC_WEBSOCKET_KEY,
    header::CONTENT_TYPE,
    header::ORIGIN,
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-real-ip"),
];

/// Drops the headers of a Socket.IO request that nothing after the HTTP layers reads (see
/// [`SOCKET_HEADERS`]); other requests pass unchanged.
pub fn keep_socket_headers<B>(mut req: Request<B>) -> Request<B> {
    let path = req.uri().path();
    let is_socket_io = path
        .strip_prefix(SOCKET_IO_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !is_socket_io {
        return req;
    }
    // Sized exactly: a map grown by inserts reserves room for 6 entries of ≈100 bytes.
    let count = SOCKET_HEADERS
        .iter()
        .map(|name| req.headers().get_all(name).iter().count())
        .sum();
    let mut kept = HeaderMap::with_capacity(count);
    for name in SOCKET_HEADERS {
        for value in req.headers().get_all(&name) {
            kept.append(name.clone(), value.clone());
        }
    }
    *req.headers_mut() = kept;
    req
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, Request};

    use super::{detach_from_read_buffer, keep_socket_headers};

    #[test]
    fn detached_request_keeps_uri_and_every_header() {
        let mut secret = HeaderValue::from_static("Bearer abc");
        secret.set_sensitive(true);
        let req = Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket")
            .header("host", "127.0.0.1:3000")
            .header("x-custom", "one")
            .header("x-custom", "two")
            .header("authorization", secret)
            .body(())
            .expect("request");
        let before = req.headers().clone();

        let req = detach_from_read_buffer(req);

        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(req.headers(), &before);
        let custom: Vec<_> = req.headers().get_all("x-custom").iter().collect();
        assert_eq!(custom, ["one", "two"]);
        let auth = req.headers().get("authorization").expect("authorization");
        assert!(auth.is_sensitive());
    }

    #[test]
    fn socket_io_requests_keep_only_the_listed_headers() {
        let req = Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket")
            .header("host", "127.0.0.1:3000")
            .header("cookie", "a=b")
            .header("user-agent", "test")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("origin", "http://localhost:5173")
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-for", "10.0.0.2")
            .body(())
            .expect("request");

        let req = keep_socket_headers(req);

        let names: Vec<_> = req.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["sec-websocket-key", "origin", "x-forwarded-for"]);
        let forwarded: Vec<_> = req.headers().get_all("x-forwarded-for").iter().collect();
        assert_eq!(forwarded, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
    }

    #[test]
    fn other_requests_keep_every_header() {
        for uri in ["/api/projects", "/socket.io-admin", "/health"] {
            let req = Request::builder()
                .uri(uri)
                .header("authorization", "Bearer abc")
                .header("cookie", "a=b")
                .body(())
                .expect("request");
            let req = keep_socket_headers(req);
            assert_eq!(req.headers().len(), 2, "{uri}");
        }
    }
}
