//! Probe safety, enforced here and nowhere else: loopback targets unless the operator allowed
//! a host (`--allow-host`, `RACECHECK_ALLOW_HOSTS`), checked before any lookup or connection;
//! hard caps on concurrency, rounds, requests and time; secrets never printed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use super::plan::Plan;

pub const DEFAULT_CONCURRENCY: u32 = 10;
pub const MAX_CONCURRENCY: u32 = 50;
pub const DEFAULT_ROUNDS: u32 = 3;
pub const MAX_ROUNDS: u32 = 10;
/// Burst requests in one probe (concurrency x rounds).
pub const MAX_TOTAL_REQUESTS: u32 = 200;
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;
pub const MAX_REQUEST_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_MAX_DURATION_MS: u64 = 60_000;
pub const MAX_DURATION_MS: u64 = 300_000;
/// An observe or reset answer larger than this is refused (the burst's answers have the same
/// cap).
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// What the operator allows. Built from flags and the environment at start; a plan (and so
/// an MCP call) cannot widen it.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    allowed_hosts: Vec<String>,
}

impl Policy {
    /// `RACECHECK_ALLOW_HOSTS` (comma-separated host names or IPs) plus `extra`.
    pub fn from_env(extra: &[String]) -> Policy {
        let mut allowed_hosts: Vec<String> = std::env::var("RACECHECK_ALLOW_HOSTS")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        allowed_hosts.extend(extra.iter().map(|h| h.trim().to_ascii_lowercase()));
        Policy { allowed_hosts }
    }

    pub fn allowed_hosts(&self) -> &[String] {
        &self.allowed_hosts
    }
}

/// Where a URL's requests go, once allowed.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: Url,
    /// Set for loopback and IP targets; allowed host names are looked up when connecting.
    pub addr: Option<SocketAddr>,
    pub host_header: String,
}

/// The plan's limits after defaults and caps.
#[derive(Clone, Debug)]
pub struct Limits {
    pub concurrency: u32,
    pub rounds: u32,
    pub request_timeout: Duration,
    pub max_duration: Duration,
}

fn cap(name: &str, value: u64, max: u64, how: &str) -> Result<(), String> {
    if value > max {
        return Err(format!(
            "{name} {value} is over the cap of {max} {how}; the probe was not started"
        ));
    }
    if value == 0 {
        return Err(format!("{name} must be at least 1"));
    }
    Ok(())
}

impl Limits {
    pub fn of(plan: &Plan) -> Result<Limits, String> {
        let concurrency = plan.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        let rounds = plan.rounds.unwrap_or(DEFAULT_ROUNDS);
        let request = plan
            .request_timeout_ms
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        let total = plan.max_duration_ms.unwrap_or(DEFAULT_MAX_DURATION_MS);
        cap(
            "concurrency",
            concurrency.into(),
            MAX_CONCURRENCY.into(),
            "requests per burst",
        )?;
        cap(
            "rounds",
            rounds.into(),
            MAX_ROUNDS.into(),
            "bursts per probe",
        )?;
        cap(
            "concurrency x rounds",
            u64::from(concurrency) * u64::from(rounds),
            MAX_TOTAL_REQUESTS.into(),
            "burst requests per probe",
        )?;
        cap(
            "request_timeout_ms",
            request,
            MAX_REQUEST_TIMEOUT_MS,
            "ms per request",
        )?;
        cap("max_duration_ms", total, MAX_DURATION_MS, "ms per probe")?;
        if let Some(d) = plan.expect.delta_per_success {
            if !d.is_finite() || d == 0.0 {
                return Err(format!("expect.delta_per_success {d} must be a non-zero number (negative for a counter that counts down); the probe was not started"));
            }
        }
        Ok(Limits {
            concurrency,
            rounds,
            request_timeout: Duration::from_millis(request),
            max_duration: Duration::from_millis(total),
        })
    }
}

/// Check a URL against the policy. No name is looked up and nothing is connected here.
pub fn endpoint(raw: &str, policy: &Policy) -> Result<Endpoint, String> {
    let url = Url::parse(raw).map_err(|e| format!("`{}` is not a URL: {e}", redact_url(raw)))?;
    if url.scheme() != "http" {
        return Err(format!(
            "`{}`: the probe speaks plain HTTP/1.1 (its last-byte synchronisation needs the raw socket); use the service's http:// development listener",
            redact_url(raw)
        ));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let (addr, allowed) = match url.host() {
        Some(Host::Ipv4(ip)) => (
            Some(SocketAddr::new(IpAddr::V4(ip), port)),
            ip.is_loopback(),
        ),
        Some(Host::Ipv6(ip)) => (
            Some(SocketAddr::new(IpAddr::V6(ip), port)),
            ip.is_loopback(),
        ),
        Some(Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                (
                    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
                    true,
                )
            } else {
                (None, false)
            }
        }
        None => return Err(format!("`{}` has no host", redact_url(raw))),
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let operator_allowed = policy.allowed_hosts.contains(&host);
    if !allowed && !operator_allowed {
        return Err(format!(
            "`{host}` is not a loopback address: the probe only targets 127.0.0.0/8, ::1 and localhost unless the operator allows the host with `--allow-host {host}` or RACECHECK_ALLOW_HOSTS; nothing was sent"
        ));
    }
    let host_header = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    Ok(Endpoint {
        url,
        addr,
        host_header,
    })
}

/// Header values that must never be printed.
/// Method and header text is checked before anything is sent: a method and a header name are
/// RFC 9110 tokens; a header value holds no CR, LF or NUL (no second request, no second `Host`
/// smuggled in).
pub fn request_text(plan: &Plan) -> Result<(), String> {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    type Headers<'p> = Vec<(&'p String, &'p String)>;
    let mut requests: Vec<(&str, Option<&String>, Headers)> = vec![(
        "target",
        plan.target.method.as_ref(),
        plan.target.headers.iter().collect(),
    )];
    if let Some(o) = &plan.observe {
        requests.push((
            "observe",
            o.method.as_ref(),
            o.headers.iter().flatten().collect(),
        ));
    }
    if let Some(r) = &plan.reset {
        requests.push(("reset", r.method.as_ref(), r.headers.iter().collect()));
    }
    if let Some(c) = &plan.create {
        let r = &c.request;
        requests.push(("create", r.method.as_ref(), r.headers.iter().collect()));
    }
    for (which, method, headers) in requests {
        if let Some(m) = method {
            if !token(m) {
                return Err(format!(
                    "{which}.method {m:?} is not an HTTP method (letters, digits and !#$%&'*+-.^_`|~ only); nothing was sent"
                ));
            }
        }
        for (name, value) in headers {
            if !token(name) {
                return Err(format!(
                    "{which}.headers: {name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only); nothing was sent"
                ));
            }
            if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!(
                    "{which}.headers.{name}: the value holds a line break or NUL, which would smuggle another header or request; nothing was sent"
                ));
            }
        }
    }
    Ok(())
}

pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key" | "api-key"
    ) || n.ends_with("-token")
        || n.ends_with("_token")
        || n == "token"
}

/// A URL for output: no user info, and secret-looking query values hidden.
/// `raw` without the user name and password of its authority, and nothing else changed (a
/// plan's URLs keep their placeholders, which a URL parser would encode).
pub fn strip_userinfo(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => raw.to_string(),
    }
}

/// Whether `raw` stays where `base` points: the same scheme, host and port, a path under the
/// base's path, and no segment a URL parser would remove or reinterpret on the way.
pub fn within(base: &str, raw: &str) -> Result<(), String> {
    let shown = redact_url(raw);
    let b = Url::parse(base).map_err(|e| format!("`{}` is not a URL: {e}", redact_url(base)))?;
    let u = Url::parse(raw).map_err(|e| format!("`{shown}` is not a URL: {e}"))?;
    if u.scheme() != b.scheme()
        || u.host_str() != b.host_str()
        || u.port_or_known_default() != b.port_or_known_default()
    {
        return Err(format!(
            "`{shown}` is not on `{}`, the base URL given: nothing was sent",
            redact_url(base)
        ));
    }
    let prefix = b.path().trim_end_matches('/');
    let under = u
        .path()
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    // What the parser kept of the path written: dot segments are removed, so they show here.
    let written = raw
        .split_once("://")
        .map(|(_, r)| r)
        .and_then(|r| r.find('/').map(|i| &r[i..]))
        .unwrap_or("/");
    let written = written.split(['?', '#']).next().unwrap_or(written);
    if !under || written != u.path() {
        return Err(format!(
            "`{shown}` leaves the path `{}` of the base URL given: nothing was sent",
            b.path()
        ));
    }
    Ok(())
}

pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return raw.split('?').next().unwrap_or(raw).to_string();
    };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = is_secret(&k)
                    || ["key", "secret", "password", "token", "sig"]
                        .iter()
                        .any(|s| k.to_ascii_lowercase().contains(s));
                (
                    k.to_string(),
                    if secret {
                        "REDACTED".into()
                    } else {
                        v.to_string()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_unless_allowed() {
        let p = Policy::default();
        assert!(endpoint("http://127.0.0.1:3000/x", &p).is_ok());
        assert!(endpoint("http://127.9.9.9/x", &p).is_ok());
        assert!(endpoint("http://[::1]:8080/x", &p).is_ok());
        assert!(endpoint("http://localhost:3000/x", &p).is_ok());
        for bad in [
            "http://10.0.0.1/x",
            "http://example.com/x",
            "http://192.168.1.2/",
            "http://[2001:db8::1]/",
        ] {
            let e = endpoint(bad, &p).unwrap_err();
            assert!(e.contains("not a loopback address"), "{bad}: {e}");
        }
        assert!(endpoint("https://127.0.0.1/x", &p)
            .unwrap_err()
            .contains("plain HTTP"));
        let allowed = Policy {
            allowed_hosts: vec!["dev.internal".into()],
        };
        let e = endpoint("http://dev.internal:8080/x", &allowed).unwrap();
        assert!(
            e.addr.is_none(),
            "allowed names are looked up only when connecting"
        );
    }

    #[test]
    fn secrets_are_recognised() {
        for h in [
            "Authorization",
            "cookie",
            "Set-Cookie",
            "X-Auth-Token",
            "x-csrf-token",
        ] {
            assert!(is_secret(h), "{h}");
        }
        assert!(!is_secret("Content-Type"));
        let u = redact_url("http://user:pw@127.0.0.1/x?api_key=abc&n=1");
        assert!(
            !u.contains("pw") && !u.contains("abc") && u.contains("n=1"),
            "{u}"
        );
    }
}
