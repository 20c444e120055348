//! Pusher's HMAC-SHA256 signatures: channel authorisation (`key:hex(hmac(secret,
//! socket_id:channel[:channel_data]))`) and signed HTTP API requests (query-string signing with
//! `auth_key`, `auth_timestamp`, `auth_version`, `body_md5`, `auth_signature`), and the Apinator
//! dialect's header signing (`X-Realtime-Key`, `-Timestamp`, `-Signature` over
//! `ts\nMETHOD\npath\nbody_md5`). Signatures are checked over the exact bytes received and
//! compared in constant time.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use switchboard_handlers::core::error::AppError;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `auth_timestamp` may be from the server's clock, either side.
pub const TIMESTAMP_TOLERANCE_SECS: u64 = 600;
/// Query parameters one signed request may carry.
const MAX_PARAMS: usize = 32;

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails.
    match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message);
            hex(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

pub fn md5_hex(body: &[u8]) -> String {
    hex(Md5::digest(body).as_slice())
}

/// Constant-time equality (the lengths are not secret).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The `auth` a subscriber must present: `key:hex(hmac(secret, socket_id:channel[:data]))`.
pub fn channel_auth(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    let mut message = format!("{socket_id}:{channel}");
    if let Some(d) = channel_data {
        message.push(':');
        message.push_str(d);
    }
    format!("{key}:{}", hmac_hex(secret, message.as_bytes()))
}

/// Whether `auth` is the app's signature for this socket and channel.
pub fn channel_auth_valid(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> bool {
    same(
        auth,
        &channel_auth(key, secret, socket_id, channel, channel_data),
    )
}

/// The `auth` of a user sign-in: `key:hex(hmac(secret, socket_id::user::user_data))`.
pub fn user_auth(key: &str, secret: &str, socket_id: &str, user_data: &str) -> String {
    let message = format!("{socket_id}::user::{user_data}");
    format!("{key}:{}", hmac_hex(secret, message.as_bytes()))
}

/// Whether `auth` is the app's signature of this sign-in.
pub fn user_auth_valid(
    key: &str,
    secret: &str,
    socket_id: &str,
    user_data: &str,
    auth: &str,
) -> bool {
    same(auth, &user_auth(key, secret, socket_id, user_data))
}

/// A request's decoded query parameters, in the order received.
pub type Params = Vec<(String, String)>;

/// A request to the HTTP API as received: method, path (without query), raw query, body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

fn unauthorized(why: &str) -> AppError {
    AppError::Unauthorized(why.to_owned())
}

/// Checks a Pusher-signed request against the app's key and secret at `now` (unix seconds),
/// and returns its decoded query parameters (the signing ones included).
pub fn verify_request(
    key: &str,
    secret: &str,
    req: &Request<'_>,
    now: i64,
) -> Result<Params, AppError> {
    let mut params: Params = Vec::new();
    for (k, v) in url::form_urlencoded::parse(req.query.as_bytes()) {
        if params.len() >= MAX_PARAMS {
            return Err(AppError::invalid("too many query parameters"));
        }
        if params.iter().any(|(seen, _)| *seen == *k) {
            return Err(AppError::invalid(format!(
                "query parameter {k} is repeated"
            )));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let signature = param(&params, "auth_signature")
        .ok_or_else(|| unauthorized("auth_signature is missing"))?;
    let auth_key = param(&params, "auth_key").ok_or_else(|| unauthorized("auth_key is missing"))?;
    if !same(auth_key, key) {
        return Err(unauthorized("auth_key is not this app's key"));
    }
    if param(&params, "auth_version") != Some("1.0") {
        return Err(unauthorized("auth_version must be 1.0"));
    }
    let ts: i64 = param(&params, "auth_timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| unauthorized("auth_timestamp is missing or not a number"))?;
    if now.abs_diff(ts) > TIMESTAMP_TOLERANCE_SECS {
        return Err(unauthorized(
            "auth_timestamp is more than 600 seconds from the server's clock",
        ));
    }
    match param(&params, "body_md5") {
        Some(md5) if !same(md5, &md5_hex(req.body)) => {
            return Err(unauthorized("body_md5 does not match the body"));
        }
        None if !req.body.is_empty() => {
            return Err(unauthorized("body_md5 is missing"));
        }
        _ => {}
    }
    let expected = hmac_hex(secret, string_to_sign(req, &params).as_bytes());
    if !same(signature, &expected) {
        return Err(unauthorized("Invalid signature"));
    }
    Ok(params)
}

/// How far an Apinator request's timestamp may be from the server's clock, either side.
pub const HEADER_TIMESTAMP_TOLERANCE_SECS: u64 = 300;

/// An Apinator-dialect request's signing headers, as received.
pub struct Headers<'a> {
    pub key: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: &'a str,
}

/// The Apinator signature of a request: `hex(hmac(secret, ts\nMETHOD\npath\nbody_md5))`, the
/// MD5 empty for an empty body. The query is not signed.
pub fn header_signature(secret: &str, ts: &str, method: &str, path: &str, body: &[u8]) -> String {
    let md5 = if body.is_empty() {
        String::new()
    } else {
        md5_hex(body)
    };
    hmac_hex(secret, format!("{ts}\n{method}\n{path}\n{md5}").as_bytes())
}

/// Checks an Apinator-signed request against the app's key and secret at `now` (unix
/// seconds), and returns its decoded query (unsigned: filters only, never authority).
pub fn verify_header_request(
    key: &str,
    secret: &str,
    headers: &Headers<'_>,
    req: &Request<'_>,
    now: i64,
) -> Result<Params, AppError> {
    let auth_key = headers
        .key
        .ok_or_else(|| unauthorized("X-Realtime-Key is missing"))?;
    if !same(auth_key, key) {
        return Err(unauthorized("X-Realtime-Key is not this app's key"));
    }
    let ts_text = headers
        .timestamp
        .ok_or_else(|| unauthorized("X-Realtime-Timestamp is missing"))?;
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| unauthorized("X-Realtime-Timestamp is not a number"))?;
    if now.abs_diff(ts) > HEADER_TIMESTAMP_TOLERANCE_SECS {
        return Err(unauthorized(
            "X-Realtime-Timestamp is more than 300 seconds from the server's clock",
        ));
    }
    let expected = header_signature(secret, ts_text, req.method, req.path, req.body);
    if !same(headers.signature, &expected) {
        return Err(unauthorized("Invalid signature"));
    }
    let mut params: Params = Vec::new();
    for (k, v) in url::form_urlencoded::parse(req.query.as_bytes()) {
        if params.len() >= MAX_PARAMS {
            return Err(AppError::invalid("too many query parameters"));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `METHOD\npath\nk=v&…`: every parameter but `auth_signature`, keys sorted by byte, values
/// as decoded (not re-encoded).
fn string_to_sign(req: &Request<'_>, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "auth_signature")
        .collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let joined: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n{}\n{}", req.method, req.path, joined.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // COMPAT-PROTOCOLS A.6: key app-key, secret app-secret, socket 1234.5678.
    #[test]
    fn channel_auth_vectors() {
        assert_eq!(
            channel_auth("app-key", "app-secret", "1234.5678", "private-chat", None),
            "app-key:56f901ee21a52ef3dd91b1c155900190e056142b3b5016e873c27db1a4607719"
        );
        let data = r#"{"user_id":"u1","user_info":{"name":"Ann"}}"#;
        let auth = "app-key:d11f645f32abd26313d5822747d3503fe9bf11cf65457b4c9ecd7c5bedeac93d";
        assert!(channel_auth_valid(
            "app-key",
            "app-secret",
            "1234.5678",
            "presence-room",
            Some(data),
            auth
        ));
        // The bytes received are signed, not a re-serialisation of them.
        let spaced = r#"{"user_id": "u1","user_info":{"name":"Ann"}}"#;
        assert!(!channel_auth_valid(
            "app-key",
            "app-secret",
            "1234.5678",
            "presence-room",
            Some(spaced),
            auth
        ));
        for wrong in [
            "other-key:d11f645f32abd26313d5822747d3503fe9bf11cf65457b4c9ecd7c5bedeac93d",
            "app-key:d11f645f32abd26313d5822747d3503fe9bf11cf65457b4c9ecd7c5bedeac93e",
            "app-key:",
            "",
        ] {
            assert!(!channel_auth_valid(
                "app-key",
                "app-secret",
                "1234.5678",
                "presence-room",
                Some(data),
                wrong
            ));
        }
        // Sign-in (A.6 vector).
        assert!(user_auth_valid(
            "app-key",
            "app-secret",
            "1234.5678",
            r#"{"id":"u1"}"#,
            "app-key:3d473cc356f847a3fe74d6659cf3f56160d2a5f6bee150d40bdcdbab6cc8aedb"
        ));
        assert!(!user_auth_valid(
            "app-key",
            "app-secret",
            "1234.5679",
            r#"{"id":"u1"}"#,
            "app-key:3d473cc356f847a3fe74d6659cf3f56160d2a5f6bee150d40bdcdbab6cc8aedb"
        ));
        // A.13's Apinator fixtures are the same scheme.
        assert_eq!(
            channel_auth(
                "app_key_1",
                "channel-secret-1",
                "1234.5678",
                "private-orders",
                None
            ),
            "app_key_1:a23ecad0d4ecfa34499ed5d61dd56e126027906d44fe5a181ac78ff084326f75"
        );
    }

    const BODY: &str = r#"{"name":"new-message","data":"{\"text\":\"hi\"}","channels":["chat"]}"#;
    const SIG: &str = "31a2e6410fc33559568dc831766758ff2e26d9eeaa484b5710c7569b218dee06";

    fn query(ts: i64, md5: &str, sig: &str) -> String {
        format!(
            "auth_key=app-key&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}&auth_signature={sig}"
        )
    }

    fn request<'a>(query: &'a str, body: &'a str) -> Request<'a> {
        Request {
            method: "POST",
            path: "/apps/42/events",
            query,
            body: body.as_bytes(),
        }
    }

    // COMPAT-PROTOCOLS A.11.
    #[test]
    fn http_signature_vector() {
        assert_eq!(md5_hex(BODY.as_bytes()), "b6931b6c59835e026a8472b59a166336");
        let q = query(1_700_000_000, "b6931b6c59835e026a8472b59a166336", SIG);
        let params = verify_request("app-key", "app-secret", &request(&q, BODY), 1_700_000_100)
            .expect("valid");
        assert!(
            params
                .iter()
                .any(|(k, v)| k == "auth_key" && v == "app-key")
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        let md5 = "b6931b6c59835e026a8472b59a166336";
        let now = 1_700_000_000;
        let cases = [
            (query(now, md5, &SIG.replace('3', "4")), BODY, now),
            (query(now, md5, SIG), BODY, now + 601),
            (query(now, md5, SIG), BODY, now - 601),
            (query(i64::MIN, md5, SIG), BODY, now),
            (query(now, &md5.replace('b', "c"), SIG), BODY, now),
            (query(now, md5, SIG), r#"{"name":"other"}"#, now),
            (
                format!(
                    "auth_key=app-key&auth_timestamp={now}&auth_version=1.0&auth_signature={SIG}"
                ),
                BODY,
                now,
            ),
            (
                query(now, md5, SIG).replace("auth_key=app-key", "auth_key=k2"),
                BODY,
                now,
            ),
            (
                query(now, md5, SIG).replace("auth_version=1.0", "auth_version=2"),
                BODY,
                now,
            ),
            (
                format!("{}&auth_key=app-key", query(now, md5, SIG)),
                BODY,
                now,
            ),
            (
                query(now, md5, SIG).replace("&auth_signature", "&x"),
                BODY,
                now,
            ),
        ];
        for (q, body, at) in cases {
            assert!(
                verify_request("app-key", "app-secret", &request(&q, body), at).is_err(),
                "{q} at {at}"
            );
        }
    }

    // COMPAT-PROTOCOLS A.13 (from the Apinator SDKs).
    #[test]
    fn apinator_header_signature_vectors() {
        let body = r#"{"name":"new-message","channel":"chat","data":"{\"hello\":\"world\"}"}"#;
        let sig = "5b4fc4e2359786bf85a6563cfb35fda3370ad50e4c1e3ed86994eea6b6184ff5";
        assert_eq!(
            header_signature(
                "test-secret-1",
                "1700000000",
                "POST",
                "/apps/123/events",
                body.as_bytes()
            ),
            sig
        );
        let get = "f4d9a4b8914a18d81484f14bedcf0ec8cc62839798f3d858cf822d8d54bdfd13";
        let headers = Headers {
            key: Some("k"),
            timestamp: Some("1700000100"),
            signature: get,
        };
        let req = Request {
            method: "GET",
            path: "/apps/123/channels",
            query: "filter_by_prefix=private-",
            body: b"",
        };
        let params = verify_header_request("k", "test-secret-2", &headers, &req, 1_700_000_200)
            .expect("the query is not signed");
        assert_eq!(params, vec![("filter_by_prefix".into(), "private-".into())]);
        for (key, ts, now, secret) in [
            (
                Some("other"),
                Some("1700000100"),
                1_700_000_100,
                "test-secret-2",
            ),
            (None, Some("1700000100"), 1_700_000_100, "test-secret-2"),
            (
                Some("k"),
                Some("1700000100"),
                1_700_000_401,
                "test-secret-2",
            ),
            (
                Some("k"),
                Some("1700000100"),
                1_699_999_799,
                "test-secret-2",
            ),
            (Some("k"), Some("x"), 1_700_000_100, "test-secret-2"),
            (Some("k"), None, 1_700_000_100, "test-secret-2"),
            (
                Some("k"),
                Some("1700000100"),
                1_700_000_100,
                "test-secret-1",
            ),
        ] {
            let h = Headers {
                key,
                timestamp: ts,
                signature: get,
            };
            assert!(
                verify_header_request("k", secret, &h, &req, now).is_err(),
                "{key:?} {ts:?} {now} {secret}"
            );
        }
        let post = Request {
            method: "POST",
            path: "/apps/123/channels",
            query: "",
            body: b"{}",
        };
        assert!(
            verify_header_request("k", "test-secret-2", &headers, &post, 1_700_000_100).is_err()
        );
    }

    #[test]
    fn query_parameters_are_signed_decoded_and_sorted() {
        let now = 1_700_000_000;
        let mut params = vec![
            ("info".to_owned(), "user_count".to_owned()),
            ("filter_by_prefix".to_owned(), "presence-".to_owned()),
            ("auth_version".to_owned(), "1.0".to_owned()),
            ("auth_timestamp".to_owned(), now.to_string()),
            ("auth_key".to_owned(), "app-key".to_owned()),
        ];
        let get = Request {
            method: "GET",
            path: "/apps/42/channels",
            query: "",
            body: b"",
        };
        let s = string_to_sign(&get, &params);
        assert_eq!(
            s,
            format!(
                "GET\n/apps/42/channels\nauth_key=app-key&auth_timestamp={now}&auth_version=1.0&filter_by_prefix=presence-&info=user_count"
            )
        );
        let sig = hmac_hex("app-secret", s.as_bytes());
        params.push(("auth_signature".to_owned(), sig));
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let req = Request { query: &q, ..get };
        assert!(verify_request("app-key", "app-secret", &req, now).is_ok());
    }
}
