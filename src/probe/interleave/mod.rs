//! The interleaving proxy: it sits between the service under test and its DynamoDB-compatible
//! database and speaks the DynamoDB JSON protocol (`X-Amz-Target: DynamoDB_20120810.*`).
//! While armed for a burst of N requests it holds each read of an item (GetItem, Query, a
//! consistent read in a transaction) until N reads of that item have arrived, or a timeout,
//! then releases them together: every request acts on the same stale value, so a race in the
//! handler shows every time, whatever the width of its window. Disarmed, it forwards bytes
//! unchanged. It records which reads it held and which writes failed their condition.
//!
//! Control requests come on the same port under `/__racecheck/` (`arm`, `disarm`); DynamoDB
//! requests go to `/`, so the two never mix. Control requests are POSTs from racecheck itself:
//! one with an `Origin` (a web page) or a `Host` other than the proxy's loopback address (a
//! rebound DNS name) is refused.
//!
//! Anyone on this machine can connect, so every connection is bounded: the time to send a
//! request and to take its answer, the time the database may take, the bytes of a message
//! (see [`wire`]), and the record kept while armed. At the connection limit the connection
//! idle longest makes room for a new one.

pub mod wire;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The longest a read may be held, whatever the arm request asks.
pub const MAX_HOLD: Duration = Duration::from_secs(5);
/// Events the record keeps while armed; later ones are counted as dropped.
pub const MAX_EVENTS: usize = 10_000;
/// The record's size as JSON; events past it are counted as dropped.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;
/// An event's item text (table and key) is cut here: it is shown, never compared.
pub const MAX_ITEM_TEXT: usize = 1024;
/// Distinct items with a gate at once; a read of one more item is not held.
const MAX_GATES: usize = 10_000;
/// Largest answer the probe reads from a proxy's control path.
pub const MAX_CONTROL_ANSWER: usize = 32 * 1024 * 1024;

/// How long and how many: the proxy's bounds on its connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A connection with no request under way is closed after this.
    pub idle: Duration,
    /// From a request's first byte to its last.
    pub request: Duration,
    /// For the database: connect, take the request, answer it whole.
    pub upstream: Duration,
    /// For the client to take an answer.
    pub write: Duration,
    /// Connections served at once.
    pub connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle: Duration::from_secs(30),
            request: Duration::from_secs(10),
            upstream: Duration::from_secs(60),
            write: Duration::from_secs(10),
            connections: 256,
        }
    }
}

/// What `arm` asks for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Arm {
    /// Reads of one item to gather before releasing them (the burst's size).
    pub parties: usize,
    /// How long the first held read waits for its rivals, in ms.
    #[serde(default = "default_hold")]
    pub hold_ms: u64,
}

fn default_hold() -> u64 {
    1_000
}

/// One thing the proxy saw or did while armed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// `GetItem`, `UpdateItem`, ...
    pub operation: String,
    /// The table and key (or key condition) it touched.
    pub item: String,
    /// For a read: how many reads of the item were released together (1: none was held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_with: Option<usize>,
    /// For a write: `ok`, `condition failed`, `transaction cancelled` or the error type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// What the proxy saw while armed, as `disarm` hands it over.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub events: Vec<Event>,
    /// Events past [`MAX_EVENTS`] or [`MAX_RECORD_BYTES`], not kept.
    #[serde(default)]
    pub dropped: u64,
}

/// Reads of one item waiting for their rivals.
struct Gate {
    arrived: usize,
    released: bool,
    open: Arc<Notify>,
}

#[derive(Default)]
struct State {
    armed: Option<Arm>,
    /// Keyed by a hash of the item (randomly keyed, so no client can aim at a collision):
    /// a 16 MiB key costs the gate 8 bytes.
    gates: HashMap<u64, Gate>,
    hasher: std::collections::hash_map::RandomState,
    record: Record,
    /// The record's size as JSON, against [`MAX_RECORD_BYTES`].
    record_bytes: usize,
}

/// What a connection is doing, for choosing one to close at the connection limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between requests.
    Idle,
    /// Sending a request.
    Reading,
    /// Its request is being served: never cut.
    Working,
}

struct Conn {
    phase: Phase,
    since: Instant,
    stop: CancellationToken,
}

#[derive(Default)]
struct Conns {
    next: u64,
    live: HashMap<u64, Conn>,
}

/// A connection's place among the live ones; dropping it frees the place.
struct Slot {
    id: u64,
    conns: Arc<Mutex<Conns>>,
    stop: CancellationToken,
}

impl Slot {
    /// Move to `phase`; false when the connection was evicted meanwhile.
    fn enter(&self, phase: Phase) -> bool {
        let mut c = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        match c.live.get_mut(&self.id) {
            Some(conn) => {
                conn.phase = phase;
                conn.since = Instant::now();
                true
            }
            None => false,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        c.live.remove(&self.id);
    }
}

/// The proxy's shared state: armed or not, the gates, the record, the connections.
#[derive(Clone, Default)]
pub struct Proxy {
    state: Arc<Mutex<State>>,
    conns: Arc<Mutex<Conns>>,
    limits: Limits,
}

const READS: &[&str] = &["GetItem", "Query", "TransactGetItems", "BatchGetItem"];
const WRITES: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "BatchWriteItem",
];

/// Which item a request touches: its table and key, canonical (object keys sorted).
fn item_of(op: &str, body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let table = v.get("TableName").and_then(Value::as_str).unwrap_or("");
    let part = |k: &str| v.get(k).map(canonical).unwrap_or_default();
    match op {
        "Query" => format!(
            "{table} {} {}",
            part("KeyConditionExpression"),
            part("ExpressionAttributeValues")
        ),
        "TransactGetItems" | "TransactWriteItems" | "BatchGetItem" | "BatchWriteItem" => {
            format!("{table}{}", canonical(&v))
        }
        _ => format!("{table} {}", part("Key")),
    }
}

fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{k:?}:{}", canonical(&m[*k])))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// `text` cut to at most `max` bytes (at a character boundary), marked when cut.
fn shown(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// What a write's answer says: `ok`, or the error's type.
fn outcome_of(status: u16, body: &[u8]) -> String {
    if (200..300).contains(&status) {
        return "ok".into();
    }
    let ty = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("__type").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| format!("status {status}"));
    if ty.contains("ConditionalCheckFailed") {
        "condition failed".into()
    } else if ty.contains("TransactionCanceled") {
        "transaction cancelled".into()
    } else {
        // The database's text, cut: the record stays small whatever it answers.
        shown(ty.rsplit('#').next().unwrap_or(&ty), 256)
    }
}

impl Proxy {
    /// A proxy with other bounds than the defaults (tests use short timeouts).
    pub fn with_limits(limits: Limits) -> Proxy {
        Proxy {
            limits,
            ..Proxy::default()
        }
    }

    pub fn arm(&self, arm: Arm) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.armed = Some(Arm {
            parties: arm.parties.clamp(1, 64),
            hold_ms: arm.hold_ms.min(MAX_HOLD.as_millis() as u64),
        });
        s.gates.clear();
        s.record = Record::default();
        s.record_bytes = 0;
    }

    /// Stop holding reads (releasing any held) and hand over the record.
    pub fn disarm(&self) -> Record {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.armed = None;
        for g in s.gates.values_mut() {
            g.released = true;
            g.open.notify_waiters();
        }
        s.gates.clear();
        s.record_bytes = 0;
        std::mem::take(&mut s.record)
    }

    /// Hold a read of `item` until its rivals arrive (or the hold time passes); returns how
    /// many were released together.
    async fn gate(&self, item: &str) -> usize {
        let open: Arc<Notify>;
        let mut released;
        let (hold, parties) = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let Some(arm) = s.armed.clone() else {
                return 1;
            };
            let key = s.hasher.hash_one(item);
            if s.gates.len() >= MAX_GATES && !s.gates.contains_key(&key) {
                return 1;
            }
            let gate = s.gates.entry(key).or_insert_with(|| Gate {
                arrived: 0,
                released: false,
                open: Arc::new(Notify::new()),
            });
            if gate.released {
                // A read after its group left: it is not part of the interleaving.
                return 1;
            }
            gate.arrived += 1;
            if gate.arrived >= arm.parties {
                gate.released = true;
                gate.open.notify_waiters();
                return gate.arrived;
            }
            open = gate.open.clone();
            // Registered while the lock is held: a rival that arrives as soon as it is let go
            // releases this read instead of notifying no one.
            released = Box::pin(open.notified());
            released.as_mut().enable();
            (Duration::from_millis(arm.hold_ms), arm.parties)
        };
        let _ = tokio::time::timeout(hold, released).await;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = s.hasher.hash_one(item);
        match s.gates.get_mut(&key) {
            Some(g) => {
                g.released = true;
                g.open.notify_waiters();
                g.arrived.min(parties)
            }
            None => 1,
        }
    }

    /// Keep `e` in the record, its item cut to [`MAX_ITEM_TEXT`], or count it as dropped once
    /// the record holds [`MAX_EVENTS`] or [`MAX_RECORD_BYTES`].
    fn record(&self, mut e: Event) {
        e.item = shown(&e.item, MAX_ITEM_TEXT);
        e.operation = shown(&e.operation, 64);
        // Its size as JSON (escapes included), plus a comma.
        let cost = serde_json::to_vec(&e).map_or(usize::MAX, |v| v.len().saturating_add(1));
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.armed.is_none() {
            return;
        }
        if s.record.events.len() >= MAX_EVENTS
            || s.record_bytes.saturating_add(cost) > MAX_RECORD_BYTES
        {
            s.record.dropped = s.record.dropped.saturating_add(1);
        } else {
            s.record_bytes += cost;
            s.record.events.push(e);
        }
    }

    fn armed(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.armed.is_some()
    }

    /// Serve on `listener`, forwarding to `upstream` (an address racecheck has checked).
    pub async fn serve(self, listener: TcpListener, upstream: SocketAddr) -> std::io::Result<()> {
        let port = listener.local_addr()?.port();
        loop {
            let client = match listener.accept().await {
                Ok((c, _)) => c,
                // Out of descriptors or a client gone before it was taken: the proxy waits a
                // moment and goes on, rather than stopping for everyone.
                Err(e) if transient(&e) => {
                    tracing::debug!("interleave accept: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(slot) = self.admit() else {
                // Every connection is at work on a request (each bounded in time): say so.
                let write = self.limits.write;
                tokio::spawn(async move {
                    let mut c = client;
                    let busy = wire::answer(
                        503,
                        "text/plain",
                        b"the interleaving proxy is serving as many connections as it can",
                        &[],
                        true,
                    );
                    let _ = tokio::time::timeout(write, c.write_all(&busy)).await;
                });
                continue;
            };
            let proxy = self.clone();
            tokio::spawn(async move {
                let stop = slot.stop.clone();
                tokio::select! {
                    _ = stop.cancelled() => tracing::debug!("interleave connection evicted"),
                    r = proxy.connection(client, upstream, port, &slot) => {
                        if let Err(e) = r {
                            tracing::debug!("interleave connection ended: {e}");
                        }
                    }
                }
            });
        }
    }

    /// A place for a new connection; at the limit, the one idle longest (else the one that has
    /// been sending its request longest) is closed to make it. `None` when all are at work.
    fn admit(&self) -> Option<Slot> {
        let mut c = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if c.live.len() >= self.limits.connections.max(1) {
            let victim = c
                .live
                .iter()
                .filter(|(_, x)| x.phase != Phase::Working)
                .min_by_key(|(_, x)| (x.phase == Phase::Reading, x.since))
                .map(|(id, _)| *id)?;
            if let Some(x) = c.live.remove(&victim) {
                x.stop.cancel();
            }
        }
        let id = c.next;
        c.next = c.next.wrapping_add(1);
        let stop = CancellationToken::new();
        c.live.insert(
            id,
            Conn {
                phase: Phase::Idle,
                since: Instant::now(),
                stop: stop.clone(),
            },
        );
        Some(Slot {
            id,
            conns: self.conns.clone(),
            stop,
        })
    }

    async fn connection(
        &self,
        client: TcpStream,
        upstream: SocketAddr,
        port: u16,
        slot: &Slot,
    ) -> std::io::Result<()> {
        let l = self.limits;
        let _ = client.set_nodelay(true);
        let (cr, mut cw) = client.into_split();
        let mut cr = BufReader::new(cr);
        let mut up: Option<Upstream> = None;
        loop {
            if !slot.enter(Phase::Idle) {
                return Ok(());
            }
            // Waits for the next request's first byte without taking it.
            match tokio::time::timeout(l.idle, cr.fill_buf()).await {
                Err(_) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Ok(Ok([])) => return Ok(()),
                Ok(Ok(_)) => {}
            }
            if !slot.enter(Phase::Reading) {
                return Ok(());
            }
            // One deadline for the head and the body: a client cannot trickle either.
            let deadline = tokio::time::Instant::now() + l.request;
            let head =
                match tokio::time::timeout_at(deadline, wire::read_request_head(&mut cr)).await {
                    Ok(Ok(Some(h))) => h,
                    Ok(Ok(None)) => return Ok(()),
                    Ok(Err(e)) => return refuse(&mut cw, e, l.write).await,
                    Err(_) => return refuse(&mut cw, late(l.request), l.write).await,
                };
            if head.expects_continue() {
                let go = b"HTTP/1.1 100 Continue\r\n\r\n";
                if tokio::time::timeout(l.write, cw.write_all(go))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            let body = match tokio::time::timeout_at(
                deadline,
                wire::read_body(&mut cr, head.framing, 413),
            )
            .await
            {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => return refuse(&mut cw, e, l.write).await,
                Err(_) => return refuse(&mut cw, late(l.request), l.write).await,
            };
            if !slot.enter(Phase::Working) {
                return Ok(());
            }
            let req = wire::Request { head, body };
            let close = req.head.closes();
            let answer = if req.head.path().starts_with("/__racecheck/") {
                self.control(&req, port, close)
            } else {
                self.forward(req, &mut up, upstream, close).await
            };
            match tokio::time::timeout(l.write, cw.write_all(&answer)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            }
            if close {
                return Ok(());
            }
        }
    }

    /// Hand `req` to the database (holding it first if it is a read while armed) and give back
    /// the answer to send the client.
    async fn forward(
        &self,
        req: wire::Request,
        up: &mut Option<Upstream>,
        upstream: SocketAddr,
        close: bool,
    ) -> Vec<u8> {
        let op = req
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_string();
        let armed = self.armed();
        let read = READS.contains(&op.as_str());
        let write = WRITES.contains(&op.as_str());
        let whole = if armed && (read || write) {
            item_of(&op, &req.body)
        } else {
            String::new()
        };
        let together = if armed && read {
            Some(self.gate(&whole).await)
        } else {
            None
        };
        // The gate needed it whole; the record and the wait for the answer need only its text.
        let item = shown(&whole, MAX_ITEM_TEXT);
        drop(whole);
        if together.is_some() {
            self.record(Event {
                operation: op.clone(),
                item: item.clone(),
                released_with: together,
                outcome: None,
            });
        }
        let to_head = req.head.method.eq_ignore_ascii_case("HEAD");
        let bytes = req.to_bytes();
        // The body is in `bytes` now; the request itself is not kept past this point.
        drop(req);
        let limit = self.limits.upstream;
        let exchange = async {
            if up.is_none() {
                let s = TcpStream::connect(upstream).await?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                *up = Some((BufReader::new(r), w));
            }
            let Some((ur, uw)) = up.as_mut() else {
                return Ok(None);
            };
            uw.write_all(&bytes).await?;
            wire::read_response(ur, to_head).await
        };
        let resp = match tokio::time::timeout(limit, exchange).await {
            Ok(Ok(Some(r))) => r,
            failed => {
                // The upstream connection is out of step or gone: the next request opens another.
                *up = None;
                let status = if failed.is_err() { 504 } else { 502 };
                let why = match failed {
                    Err(_) => format!(
                        "the database at {upstream} did not answer within {} s",
                        limit.as_secs()
                    ),
                    Ok(Ok(None)) => {
                        format!(
                            "the database at {upstream} closed the connection without answering"
                        )
                    }
                    Ok(Err(e)) => format!("the database at {upstream} answered unreadably: {e}"),
                    Ok(Ok(Some(_))) => String::new(),
                };
                return wire::answer(status, "text/plain", why.as_bytes(), &[], close);
            }
        };
        if resp.closes() {
            *up = None;
        }
        if armed && write {
            self.record(Event {
                operation: op,
                item,
                released_with: None,
                outcome: Some(outcome_of(resp.status, &resp.body)),
            });
        }
        resp.to_bytes()
    }

    /// Answer a request under `/__racecheck/`.
    fn control(&self, req: &wire::Request, port: u16, close: bool) -> Vec<u8> {
        let json = |status: u16, v: Value, extra: &[(&str, &str)]| {
            wire::answer(
                status,
                "application/json",
                v.to_string().as_bytes(),
                extra,
                close,
            )
        };
        // A browser puts `Origin` on a page's cross-site POST, racecheck never does; a `Host`
        // other than this address is a name rebound to loopback by a page's DNS.
        if req.header("origin").is_some() {
            return json(
                403,
                serde_json::json!({"error": "control requests with an Origin (from a web page) are refused"}),
                &[],
            );
        }
        if !loopback_host(req.header("host"), port) {
            return json(
                403,
                serde_json::json!({"error": format!("control requests must name Host 127.0.0.1:{port}, localhost:{port} or [::1]:{port}")}),
                &[],
            );
        }
        let path = req.head.path();
        if !matches!(path, "/__racecheck/arm" | "/__racecheck/disarm") {
            return json(
                404,
                serde_json::json!({"error": format!("unknown control path `{}`", shown(path, 200))}),
                &[],
            );
        }
        if req.head.method != "POST" {
            return json(
                405,
                serde_json::json!({"error": "control requests are POSTs"}),
                &[("Allow", "POST")],
            );
        }
        if path == "/__racecheck/arm" {
            match serde_json::from_slice::<Arm>(&req.body) {
                Ok(a) => {
                    self.arm(a);
                    json(200, serde_json::json!({"armed": true}), &[])
                }
                Err(e) => json(
                    400,
                    serde_json::json!({"error": format!("arm takes {{\"parties\": N, \"hold_ms\": M}}: {e}")}),
                    &[],
                ),
            }
        } else {
            let record = self.disarm();
            let body = serde_json::to_vec(&record).unwrap_or_else(|_| b"{}".to_vec());
            wire::answer(200, "application/json", &body, &[], close)
        }
    }
}

type Upstream = (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
);

/// Accept errors that pass (descriptors run out, a client gone before it was taken).
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether `host` names this proxy's own loopback address.
fn loopback_host(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else {
        return false;
    };
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| host.eq_ignore_ascii_case(&format!("{h}:{port}")))
}

fn late(limit: Duration) -> wire::Error {
    wire::Error::Refused {
        status: 408,
        why: format!(
            "the request did not arrive whole within {} s",
            limit.as_secs()
        ),
    }
}

/// Answer a request the proxy cannot read (4xx with the reason), then close the connection.
async fn refuse(
    cw: &mut tokio::net::tcp::OwnedWriteHalf,
    e: wire::Error,
    write: Duration,
) -> std::io::Result<()> {
    match e {
        wire::Error::Refused { status, why } => {
            tracing::debug!("interleave refused a request ({status}): {why}");
            let a = wire::answer(status, "text/plain", why.as_bytes(), &[], true);
            let _ = tokio::time::timeout(write, cw.write_all(&a)).await;
            Ok(())
        }
        wire::Error::Truncated => Ok(()),
        wire::Error::Io(e) => Err(e),
    }
}

/// One control request to a running proxy (its URL, e.g. `http://127.0.0.1:8001`); its answer
/// is read to at most [`MAX_CONTROL_ANSWER`].
async fn control(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    body: Option<&Arm>,
) -> Result<Value, String> {
    let mut req = client.post(format!("{}/__racecheck/{what}", url.trim_end_matches('/')));
    if let Some(b) = body {
        req = req.json(b);
    }
    let mut r = req
        .send()
        .await
        .map_err(|e| format!("cannot reach the interleaving proxy at {url}: {e}"))?;
    let over = || {
        format!(
            "the interleaving proxy at {url} answered {what} with more than {} MiB; racecheck stops reading there (is something else listening at that address?)",
            MAX_CONTROL_ANSWER >> 20
        )
    };
    if r.content_length()
        .is_some_and(|n| n > MAX_CONTROL_ANSWER as u64)
    {
        return Err(over());
    }
    let status = r.status();
    let mut buf = Vec::new();
    while let Some(c) = r
        .chunk()
        .await
        .map_err(|e| format!("the interleaving proxy's answer to {what} broke off: {e}"))?
    {
        if c.len() > MAX_CONTROL_ANSWER - buf.len() {
            return Err(over());
        }
        buf.extend_from_slice(&c);
    }
    let v: Value = serde_json::from_slice(&buf)
        .map_err(|e| format!("the interleaving proxy answered oddly ({status}): {e}"))?;
    match v.get("error") {
        Some(e) => Err(format!("the interleaving proxy refused to {what}: {e}")),
        None if !status.is_success() => Err(format!(
            "the interleaving proxy answered {what} with {status}"
        )),
        None => Ok(v),
    }
}

/// Arm a running proxy for a burst.
pub async fn remote_arm(client: &reqwest::Client, url: &str, arm: &Arm) -> Result<(), String> {
    control(client, url, "arm", Some(arm)).await.map(|_| ())
}

/// Disarm a running proxy and take its record.
pub async fn remote_disarm(client: &reqwest::Client, url: &str) -> Result<Record, String> {
    let v = control(client, url, "disarm", None).await?;
    serde_json::from_value(v)
        .map_err(|e| format!("the interleaving proxy's record is unreadable: {e}"))
}

/// The record in a few lines: which reads were held together, which writes failed.
pub fn describe(record: &Record) -> Vec<String> {
    let events = &record.events;
    let mut out = vec![];
    let held: Vec<&Event> = events
        .iter()
        .filter(|e| e.released_with.is_some_and(|n| n > 1))
        .collect();
    if let Some(e) = held.first() {
        out.push(format!(
            "{} reads of `{}` held and released together ({} {})",
            e.released_with.unwrap_or(1),
            e.item.trim(),
            held.len(),
            if held.len() == 1 { "read" } else { "reads" }
        ));
    }
    let writes: Vec<&Event> = events.iter().filter(|e| e.outcome.is_some()).collect();
    let ok = writes
        .iter()
        .filter(|e| e.outcome.as_deref() == Some("ok"))
        .count();
    if !writes.is_empty() {
        let failed: Vec<String> = writes
            .iter()
            .filter_map(|e| e.outcome.clone().filter(|o| o != "ok"))
            .collect();
        out.push(format!(
            "then {} writes: {ok} applied{}",
            writes.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(", {}", failed.join(", "))
            }
        ));
    }
    if record.dropped > 0 {
        out.push(format!(
            "{} more events not recorded (the record keeps {MAX_EVENTS} events, {} MiB)",
            record.dropped,
            MAX_RECORD_BYTES >> 20
        ));
    }
    out
}

/// A proxy this process serves until it is dropped.
pub struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Start a proxy at `url` (its loopback address, as `--interleave` names it) for the database
/// at `upstream` (loopback unless allowed), for as long as the returned [`Running`] lives.
pub async fn start(
    url: &str,
    upstream: &str,
    policy: &super::safety::Policy,
) -> Result<Running, String> {
    let at = super::safety::endpoint(url, policy)?;
    let listen = at
        .addr
        .filter(|a| a.ip().is_loopback())
        .ok_or_else(|| format!("`{url}`: racecheck can start the proxy only on a loopback address such as http://127.0.0.1:8001"))?;
    let (listener, upstream_addr) = bind(listen, upstream, policy).await.map_err(|e| {
        format!("{e} (if a proxy already runs there, leave out --interleave-upstream)")
    })?;
    Ok(Running(tokio::spawn(async move {
        if let Err(e) = Proxy::default().serve(listener, upstream_addr).await {
            tracing::warn!("the interleaving proxy on {listen} stopped: {e}");
        }
    })))
}

/// The proxy's listener on `listen` (a loopback address the caller checked) and the address
/// of its `upstream` (loopback unless allowed), which may not be the proxy itself.
pub async fn bind(
    listen: SocketAddr,
    upstream: &str,
    policy: &super::safety::Policy,
) -> Result<(TcpListener, SocketAddr), String> {
    let up = super::safety::endpoint(upstream, policy)?;
    let upstream_addr = super::resolve(&up).await?;
    if upstream_addr == listen {
        return Err(format!(
            "the proxy at {listen} cannot be its own upstream; give the database's address"
        ));
    }
    let started = Instant::now();
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(
        "interleaving proxy on {listen} for {upstream_addr} (ready in {:?})",
        started.elapsed()
    );
    Ok((listener, upstream_addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_of_one_item_wait_for_each_other_only_while_armed() {
        let p = Proxy::default();
        assert_eq!(p.gate("t {id}").await, 1, "disarmed: nothing is held");
        p.arm(Arm {
            parties: 2,
            hold_ms: 2_000,
        });
        let started = Instant::now();
        let (a, b) = tokio::join!(p.gate("t {id}"), async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            p.gate("t {id}").await
        });
        assert_eq!((a, b), (2, 2));
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "released on arrival"
        );
        // A read with no rival is released when its hold time ends.
        p.arm(Arm {
            parties: 2,
            hold_ms: 50,
        });
        assert_eq!(p.gate("t {other}").await, 1);
        p.record(Event {
            operation: "UpdateItem".into(),
            item: "t".into(),
            released_with: None,
            outcome: Some("ok".into()),
        });
        assert_eq!(p.disarm().events.len(), 1);
        assert_eq!(p.gate("t {id}").await, 1, "disarmed again");
    }

    #[test]
    fn an_item_is_its_table_and_key_whatever_the_order() {
        let a = item_of(
            "GetItem",
            br#"{"TableName":"c","Key":{"a":{"S":"1"},"b":{"N":"2"}}}"#,
        );
        let b = item_of(
            "GetItem",
            br#"{"Key":{"b":{"N":"2"},"a":{"S":"1"}},"TableName":"c"}"#,
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            item_of("GetItem", br#"{"TableName":"c","Key":{"a":{"S":"2"}}}"#)
        );
        assert_eq!(
            outcome_of(
                400,
                br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#
            ),
            "condition failed"
        );
        assert_eq!(outcome_of(200, b"{}"), "ok");
    }
}
