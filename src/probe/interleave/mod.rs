//! The interleaving proxy: it sits between the service under test and its DynamoDB-compatible
//! database and speaks the DynamoDB JSON protocol (`X-Amz-Target: DynamoDB_20120810.*`).
//! While armed for a burst of N requests it holds each read of an item (GetItem, Query, a
//! consistent read in a transaction) until N reads of that item have arrived, or a timeout,
//! then releases them together: every request acts on the same stale value, so a race in the
//! handler shows every time, whatever the width of its window. Disarmed, it forwards bytes
//! unchanged. It records which reads it held and which writes failed their condition.
//!
//! Control requests come on the same port under `/__racecheck/` (`arm`, `disarm`); DynamoDB
//! requests go to `/`, so the two never mix.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Largest request or response body forwarded (DynamoDB's own request limit is 16 MB).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Largest request or response head.
const MAX_HEAD: usize = 64 * 1024;
/// Connections served at once.
const MAX_CONNECTIONS: usize = 256;
/// The longest a read may be held, whatever the arm request asks.
pub const MAX_HOLD: Duration = Duration::from_secs(5);

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

/// Reads of one item waiting for their rivals.
struct Gate {
    arrived: usize,
    released: bool,
    open: Arc<Notify>,
}

#[derive(Default)]
struct State {
    armed: Option<Arm>,
    gates: HashMap<String, Gate>,
    events: Vec<Event>,
}

/// The proxy's shared state: armed or not, the gates, the record.
#[derive(Clone, Default)]
pub struct Proxy {
    state: Arc<Mutex<State>>,
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
        ty.rsplit('#').next().unwrap_or(&ty).to_string()
    }
}

impl Proxy {
    pub fn arm(&self, arm: Arm) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.armed = Some(Arm {
            parties: arm.parties.clamp(1, 64),
            hold_ms: arm.hold_ms.min(MAX_HOLD.as_millis() as u64),
        });
        s.gates.clear();
        s.events.clear();
    }

    /// Stop holding reads (releasing any held) and hand over the record.
    pub fn disarm(&self) -> Vec<Event> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.armed = None;
        for g in s.gates.values_mut() {
            g.released = true;
            g.open.notify_waiters();
        }
        s.gates.clear();
        std::mem::take(&mut s.events)
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
            let gate = s.gates.entry(item.to_string()).or_insert_with(|| Gate {
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
        match s.gates.get_mut(item) {
            Some(g) => {
                g.released = true;
                g.open.notify_waiters();
                g.arrived.min(parties)
            }
            None => 1,
        }
    }

    fn record(&self, e: Event) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.armed.is_some() && s.events.len() < 10_000 {
            s.events.push(e);
        }
    }

    fn armed(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.armed.is_some()
    }

    /// Serve on `listener`, forwarding to `upstream` (an address racecheck has checked).
    pub async fn serve(self, listener: TcpListener, upstream: SocketAddr) -> std::io::Result<()> {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (client, _) = listener.accept().await?;
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let proxy = self.clone();
            tokio::spawn(async move {
                if let Err(e) = proxy.connection(client, upstream).await {
                    tracing::debug!("interleave connection ended: {e}");
                }
                drop(permit);
            });
        }
    }

    async fn connection(&self, client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
        let _ = client.set_nodelay(true);
        let (cr, mut cw) = client.into_split();
        let mut cr = BufReader::new(cr);
        let mut up: Option<(
            BufReader<tokio::net::tcp::OwnedReadHalf>,
            tokio::net::tcp::OwnedWriteHalf,
        )> = None;
        loop {
            let Some(req) = read_message(&mut cr, true).await? else {
                return Ok(());
            };
            if req.path.starts_with("/__racecheck/") {
                let body = self.control(&req.path, &req.body);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                cw.write_all(head.as_bytes()).await?;
                cw.write_all(body.as_bytes()).await?;
                continue;
            }
            let op = req
                .header("x-amz-target")
                .and_then(|t| t.rsplit('.').next())
                .unwrap_or("")
                .to_string();
            let armed = self.armed();
            let item = if armed && (READS.contains(&op.as_str()) || WRITES.contains(&op.as_str())) {
                item_of(&op, &req.body)
            } else {
                String::new()
            };
            if armed && READS.contains(&op.as_str()) {
                let together = self.gate(&item).await;
                self.record(Event {
                    operation: op.clone(),
                    item: item.clone(),
                    released_with: Some(together),
                    outcome: None,
                });
            }
            if up.is_none() {
                let s = TcpStream::connect(upstream).await?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                up = Some((BufReader::new(r), w));
            }
            let Some((ur, uw)) = up.as_mut() else {
                return Ok(());
            };
            uw.write_all(&req.raw).await?;
            let Some(resp) = read_message(ur, false).await? else {
                return Ok(());
            };
            if armed && WRITES.contains(&op.as_str()) {
                self.record(Event {
                    operation: op,
                    item,
                    released_with: None,
                    outcome: Some(outcome_of(resp.status, &resp.body)),
                });
            }
            cw.write_all(&resp.raw).await?;
        }
    }

    fn control(&self, path: &str, body: &[u8]) -> String {
        match path {
            "/__racecheck/arm" => match serde_json::from_slice::<Arm>(body) {
                Ok(a) => {
                    self.arm(a);
                    "{\"armed\":true}".into()
                }
                Err(e) => serde_json::json!({"error": format!("arm takes {{\"parties\": N, \"hold_ms\": M}}: {e}")}).to_string(),
            },
            "/__racecheck/disarm" => serde_json::json!({"events": self.disarm()}).to_string(),
            _ => serde_json::json!({"error": format!("unknown control path `{path}`")}).to_string(),
        }
    }
}

/// One HTTP/1.1 message as read: its bytes exactly, and what the proxy needs of it.
struct Message {
    raw: Vec<u8>,
    path: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// Read one request (or response) with a `Content-Length` body, or a chunked one; `None` at
/// a clean end of the stream.
async fn read_message<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    request: bool,
) -> std::io::Result<Option<Message>> {
    use tokio::io::AsyncBufReadExt;
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        let n = r.read_until(b'\n', &mut raw).await?;
        if n == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(invalid("the stream ended inside a message head"))
            };
        }
        if raw.len() > MAX_HEAD {
            return Err(invalid("message head over 64 KiB"));
        }
        let line = &raw[before..];
        if (line == b"\r\n" || line == b"\n") && before > 0 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&raw).to_string();
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (path, status) = if request {
        let _method = parts.next();
        (parts.next().unwrap_or("/").to_string(), 0)
    } else {
        let _version = parts.next();
        (
            String::new(),
            parts.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        )
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let start = raw.len();
            r.read_until(b'\n', &mut raw).await?;
            let size_line = String::from_utf8_lossy(&raw[start..]).to_string();
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if body.len() + size > MAX_BODY {
                return Err(invalid("body over 16 MiB"));
            }
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).await?;
            raw.extend_from_slice(&chunk);
            body.extend_from_slice(&chunk[..size]);
            if size == 0 {
                break;
            }
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
        if len > MAX_BODY {
            return Err(invalid("body over 16 MiB"));
        }
        body = vec![0; len];
        r.read_exact(&mut body).await?;
        raw.extend_from_slice(&body);
    } else if !request && status != 204 && status != 304 && !(100..200).contains(&status) {
        // A response delimited by the end of the connection.
        r.take(MAX_BODY as u64).read_to_end(&mut body).await?;
        raw.extend_from_slice(&body);
    }
    Ok(Some(Message {
        raw,
        path,
        status,
        headers,
        body,
    }))
}

/// One control request to a running proxy (its URL, e.g. `http://127.0.0.1:8001`).
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
    let r = req
        .send()
        .await
        .map_err(|e| format!("cannot reach the interleaving proxy at {url}: {e}"))?;
    let v: Value = r
        .json()
        .await
        .map_err(|e| format!("the interleaving proxy answered oddly: {e}"))?;
    match v.get("error") {
        Some(e) => Err(format!("the interleaving proxy refused to {what}: {e}")),
        None => Ok(v),
    }
}

/// Arm a running proxy for a burst.
pub async fn remote_arm(client: &reqwest::Client, url: &str, arm: &Arm) -> Result<(), String> {
    control(client, url, "arm", Some(arm)).await.map(|_| ())
}

/// Disarm a running proxy and take its record.
pub async fn remote_disarm(client: &reqwest::Client, url: &str) -> Result<Vec<Event>, String> {
    let v = control(client, url, "disarm", None).await?;
    serde_json::from_value(v.get("events").cloned().unwrap_or(Value::Array(vec![])))
        .map_err(|e| format!("the interleaving proxy's record is unreadable: {e}"))
}

/// The record in a few lines: which reads were held together, which writes failed.
pub fn describe(events: &[Event]) -> Vec<String> {
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
        assert_eq!(p.disarm().len(), 1);
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
