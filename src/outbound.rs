//! Integrations' HTTP client (reqwest over rustls) with the SSRF guard. The guard runs where the
//! connection is made: a DNS resolver that drops private addresses (so a name that resolves to
//! 127.0.0.1, or re-resolves to it later, never gets a connection), plus a check of IP-literal
//! hosts, which bypass DNS, on the first request and on every redirect.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use reqwest::{Method, Url};
use serde_json::Value;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ports::{Outbound, OutboundRequest, OutboundResponse};

/// Responses larger than this are refused (the contract: 1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
const MAX_REDIRECTS: usize = 5;

/// Why the guard refused a target; found again in reqwest's error chain.
#[derive(Debug)]
struct Blocked(String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is a private or local address", self.0)
    }
}

impl StdError for Blocked {}

/// True for addresses an integration may reach without `INTEGRATION_ALLOW_PRIVATE`: not
/// loopback, private, link-local (cloud metadata lives at 169.254.169.254), shared, multicast,
/// reserved or unspecified. IPv6 is public only inside global unicast (2000::/3) and outside
/// its special ranges; IPv6 forms that carry an IPv4 address (mapped, translated, NAT64, 6to4,
/// Teredo) are judged by that IPv4 address, since a relay or the host's stack delivers them there.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // IPv4-mapped ::ffff:0:0/96 and IPv4-translated ::ffff:0:0:0/96 (SIIT).
    if s[0..6] == [0, 0, 0, 0, 0, 0xffff] || s[0..6] == [0, 0, 0, 0, 0xffff, 0] {
        return is_public_v4(v4(s[6], s[7]));
    }
    // Well-known NAT64 prefix 64:ff9b::/96.
    if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(v4(s[6], s[7]));
    }
    // 6to4 2002::/16: the relay forwards to the embedded IPv4 address.
    if s[0] == 0x2002 {
        return is_public_v4(v4(s[1], s[2]));
    }
    // Teredo 2001:0::/32: the server's IPv4 in bits 32..64, the client's (inverted) in the
    // last 32 bits; both must be public.
    if s[0] == 0x2001 && s[1] == 0 {
        return is_public_v4(v4(s[2], s[3])) && is_public_v4(v4(!s[6], !s[7]));
    }
    // Everything outside global unicast is not public: ::/8 (loopback, unspecified,
    // IPv4-compatible), 64:ff9b:1::/48 (local-use NAT64), 100::/64 (discard), fc00::/7
    // (unique local, incl. fd00:ec2::254 metadata), fe80::/10, fec0::/10, ff00::/8.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // IETF protocol assignments 2001::/23 (ORCHID, AMT…); documentation 2001:db8::/32 and
    // 3fff::/20 (RFC 9637).
    let ietf = s[0] == 0x2001 && s[1] < 0x0200;
    let documentation = (s[0] == 0x2001 && s[1] == 0x0db8) || s[0] == 0x3fff;
    !ietf && !documentation
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || a >= 240) // reserved
}

struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Blocked(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The host of `url` when it is an IP literal the guard refuses.
fn blocked_literal(url: &Url, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    let ip = match url.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    (!is_public(ip)).then(|| ip.to_string())
}

pub struct HttpOutbound {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl HttpOutbound {
    pub fn new(allow_private: bool, timeout: Duration) -> anyhow::Result<Self> {
        let redirect = Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if let Some(host) = blocked_literal(attempt.url(), allow_private) {
                attempt.error(Blocked(host))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            // An ambient HTTP(S)_PROXY would resolve and connect to the target itself, past the
            // guarded resolver: integrations always connect directly.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(redirect)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_private,
            timeout,
        })
    }

    fn map_err(&self, e: reqwest::Error) -> AppError {
        let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
        while let Some(s) = source {
            if let Some(b) = s.downcast_ref::<Blocked>() {
                return refused(&b.0);
            }
            source = s.source();
        }
        if e.is_timeout() {
            AppError::Upstream(format!(
                "the integration endpoint did not answer within {} ms",
                self.timeout.as_millis()
            ))
        } else if e.is_connect() {
            AppError::Upstream("could not connect to the integration endpoint".into())
        } else if e.is_redirect() {
            AppError::Upstream("the integration endpoint redirected too often".into())
        } else if e.is_builder() {
            AppError::invalid(format!(
                "the request could not be built: {}",
                e.without_url()
            ))
        } else {
            AppError::Upstream(format!(
                "the request to the integration endpoint failed: {}",
                e.without_url()
            ))
        }
    }
}

fn refused(host: &str) -> AppError {
    AppError::forbidden(format!(
        "integration target {host} is a loopback, private, link-local or metadata address; \
         the server refuses it unless INTEGRATION_ALLOW_PRIVATE=true"
    ))
}

#[async_trait]
impl Outbound for HttpOutbound {
    async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, AppError> {
        let url = Url::parse(&req.url)
            .map_err(|e| AppError::invalid(format!("integration URL is not valid: {e}")))?;
        if let Some(host) = blocked_literal(&url, self.allow_private) {
            return Err(refused(&host));
        }
        let method = Method::from_bytes(req.method.as_bytes())
            .map_err(|_| AppError::invalid(format!("bad method {}", req.method)))?;
        let mut builder = self.client.request(method, url).query(&req.query);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = &req.json_body {
            builder = builder.json(body);
        }
        let mut resp = builder.send().await.map_err(|e| self.map_err(e))?;
        let status = resp.status().as_u16();
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.map_err(e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status,
            body: decode_body(&body, is_json),
        })
    }
}

fn too_large() -> AppError {
    AppError::Upstream(format!(
        "the integration endpoint's response exceeds {MAX_RESPONSE_BYTES} bytes"
    ))
}

/// JSON when the server says so and it parses; otherwise text; empty is null.
fn decode_body(body: &[u8], is_json: bool) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    if is_json && let Ok(v) = serde_json::from_slice(body) {
        return v;
    }
    Value::String(String::from_utf8_lossy(body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_targets_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            let ip: IpAddr = s.parse().expect("ip");
            assert!(!is_public(ip), "{s} must be refused");
        }
        for s in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "1.1.1.1"] {
            let ip: IpAddr = s.parse().expect("ip");
            assert!(is_public(ip), "{s} must be allowed");
        }
    }

    #[test]
    fn ipv6_forms_carrying_private_ipv4_are_refused() {
        for s in [
            "::ffff:0:7f00:1",                      // IPv4-translated 127.0.0.1
            "::ffff:0:a9fe:a9fe",                   // IPv4-translated 169.254.169.254
            "::ffff:10.0.0.1",                      // IPv4-mapped
            "64:ff9b::c0a8:101",                    // NAT64 of 192.168.1.1
            "64:ff9b:1::7f00:1",                    // local-use NAT64 (RFC 8215)
            "64:ff9b:1:ffff::808:808",              // local-use NAT64, whatever it embeds
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1
            "2001:0:a00:1::",                       // Teredo via server 10.0.0.1
            "2002:c0a8:101::1",                     // 6to4 of 192.168.1.1
            "2002:a9fe:a9fe::",                     // 6to4 of metadata
            "::7f00:1",                             // IPv4-compatible
            "100::1",                               // discard-only
            "fc00::1",                              // unique local
            "fec0::1",                              // site-local
            "ff02::1",                              // multicast
            "2001:db8::1",                          // documentation
            "3fff::1",                              // documentation
            "2001:10::1",                           // ORCHID
            "4000::1",                              // outside global unicast
        ] {
            let ip: IpAddr = s.parse().expect("ip");
            assert!(!is_public(ip), "{s} must be refused");
        }
        for s in [
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo, client 8.8.8.8
            "2a00:1450:4001::1",
            "2001:4860:4860::8888",
        ] {
            let ip: IpAddr = s.parse().expect("ip");
            assert!(is_public(ip), "{s} must be allowed");
        }
    }

    #[test]
    fn literal_hosts_are_checked() {
        let u = |s: &str| Url::parse(s).expect("url");
        assert!(blocked_literal(&u("http://127.0.0.1:8080/x"), false).is_some());
        assert!(blocked_literal(&u("http://[::1]/x"), false).is_some());
        assert!(blocked_literal(&u("http://2130706433/"), false).is_some());
        assert!(blocked_literal(&u("http://127.0.0.1/"), true).is_none());
        assert!(blocked_literal(&u("http://example.com/"), false).is_none());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let out = HttpOutbound::new(false, Duration::from_secs(2)).expect("client");
        let err = out
            .send(OutboundRequest {
                method: "GET".into(),
                url: "http://localhost:9/".into(),
                query: vec![],
                headers: vec![],
                json_body: None,
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code().as_str(), "FORBIDDEN", "{err}");
    }

    #[test]
    fn bodies_decode_by_content_type() {
        assert_eq!(decode_body(b"", true), Value::Null);
        assert_eq!(decode_body(br#"{"a":1}"#, true), serde_json::json!({"a":1}));
        assert_eq!(
            decode_body(br#"{"a":1}"#, false),
            Value::String(r#"{"a":1}"#.into())
        );
        assert_eq!(decode_body(b"nope", true), Value::String("nope".into()));
    }
}
