//! A small HTTP/1.1 server whose racy handlers read, wait a configurable window, then write,
//! beside safe variants that do the same under one lock. It timestamps when each request has
//! fully arrived, so the probe's burst spread can be measured at the receiving end.
//!
//! Routes (all answer JSON, `Connection: close`):
//! - `GET /counter`, `POST /counter/incr-racy`, `POST /counter/incr-safe`
//! - `GET /coupon`, `POST /coupon/redeem-racy`, `POST /coupon/redeem-safe` (409 once used)
//! - `POST /flaky` (500 while another request is in flight), `POST /limited` (429 beyond 3 in
//!   flight), `POST /unlimited`
//! - `POST /tickets` (201 `{"ticket_id": "t1", "uses": 0}`), `GET /tickets/{id}`,
//!   `POST /tickets/{id}/use-racy`, `POST /tickets/{id}/use-safe` (one use each, 409 after;
//!   404 for a ticket never created)
//! - `POST /reset`, `GET /arrivals` (microseconds since the first arrival), `POST /arrivals/reset`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

#[derive(Default)]
struct State {
    counter: i64,
    redeemed: bool,
    redemptions: i64,
    /// Tickets by id: how many times each was used.
    tickets: std::collections::HashMap<String, i64>,
}

struct Shared {
    window: Duration,
    state: Mutex<State>,
    in_flight: AtomicUsize,
    arrivals: std::sync::Mutex<Vec<Instant>>,
}

/// A running server; it stops when dropped.
pub struct RacyServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Drop for RacyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RacyServer {
    /// Start on a free loopback port; racy handlers wait `window` between read and write.
    pub async fn start(window: Duration) -> std::io::Result<RacyServer> {
        Self::start_on(0, window).await
    }

    /// Start an HTTP/2 server (cleartext, prior knowledge) with the same routes.
    pub async fn start_h2(window: Duration) -> std::io::Result<RacyServer> {
        Self::listen(0, window, true).await
    }

    /// Start on a given loopback port (0 picks a free one).
    pub async fn start_on(port: u16, window: Duration) -> std::io::Result<RacyServer> {
        Self::listen(port, window, false).await
    }

    async fn listen(port: u16, window: Duration, h2: bool) -> std::io::Result<RacyServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            window,
            state: Mutex::new(State::default()),
            in_flight: AtomicUsize::new(0),
            arrivals: std::sync::Mutex::new(vec![]),
        });
        let state = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if h2 {
                        let _ = serve_h2(stream, shared).await;
                    } else {
                        let _ = serve(stream, shared).await;
                    }
                });
            }
        });
        Ok(RacyServer {
            addr,
            task,
            shared: state,
        })
    }

    /// Time between the first and the last request to arrive since the last reset, and how
    /// many arrived.
    pub fn arrival_spread(&self) -> (Duration, usize) {
        let a = self
            .shared
            .arrivals
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default();
        match (a.iter().min(), a.iter().max()) {
            (Some(first), Some(last)) => (last.duration_since(*first), a.len()),
            _ => (Duration::ZERO, 0),
        }
    }

    pub fn reset_arrivals(&self) {
        if let Ok(mut a) = self.shared.arrivals.lock() {
            a.clear();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A ticket's routes: created by POST, used at most once.
async fn ticket(method: &str, rest: &str, s: &Shared, record: impl Fn(&Shared)) -> (u16, String) {
    let used = |id: &str, n: i64| format!("{{\"ticket_id\": \"{id}\", \"uses\": {n}}}");
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", [""]) => {
            let mut st = s.state.lock().await;
            let id = format!("t{}", st.tickets.len() + 1);
            st.tickets.insert(id.clone(), 0);
            (201, used(&id, 0))
        }
        ("GET", [id]) => match s.state.lock().await.tickets.get(*id) {
            Some(n) => (200, used(id, *n)),
            None => (404, "{\"error\": \"no such ticket\"}".into()),
        },
        ("POST", [id, action @ ("use-racy" | "use-safe")]) => {
            record(s);
            let safe = *action == "use-safe";
            let mut held = if safe {
                Some(s.state.lock().await)
            } else {
                None
            };
            let current = match &held {
                Some(st) => st.tickets.get(*id).copied(),
                None => s.state.lock().await.tickets.get(*id).copied(),
            };
            match current {
                None => return (404, "{\"error\": \"no such ticket\"}".into()),
                Some(n) if n > 0 => return (409, "{\"error\": \"already used\"}".into()),
                Some(_) => {}
            }
            tokio::time::sleep(s.window).await;
            let st = match &mut held {
                Some(st) => st,
                None => &mut s.state.lock().await,
            };
            let n = st.tickets.entry(id.to_string()).or_default();
            *n += 1;
            (200, used(id, *n))
        }
        _ => (404, "{\"error\": \"not found\"}".into()),
    }
}

/// Read one request: the request line and the body (by Content-Length).
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(String, String)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let line = head.lines().next().unwrap_or("").to_string();
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
            return Ok(Some((line, body)));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let Some((line, _body)) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let arrived = Instant::now();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    // Targets that misbehave, for the probe's hostile tests.
    match path {
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        "/garbage" => {
            stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").await?;
            return stream.shutdown().await;
        }
        "/redirect" => {
            let r = "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            stream.write_all(r.as_bytes()).await?;
            return stream.shutdown().await;
        }
        "/endless" => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
            loop {
                stream.write_all(chunk.as_bytes()).await?;
            }
        }
        _ => {}
    }
    let busy = shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let (status, body) = route(method, path, &shared, busy, arrived).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn serve_h2(stream: TcpStream, shared: Arc<Shared>) -> Result<(), h2::Error> {
    let mut conn = h2::server::handshake(stream).await?;
    while let Some(next) = conn.accept().await {
        let (request, mut respond) = next?;
        let shared = shared.clone();
        tokio::spawn(async move {
            let method = request.method().as_str().to_string();
            let path = request.uri().path().to_string();
            let mut body = request.into_body();
            // The request has arrived when its stream ends.
            while let Some(chunk) = body.data().await {
                let Ok(chunk) = chunk else { return };
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            let arrived = Instant::now();
            let busy = shared.in_flight.fetch_add(1, Ordering::SeqCst);
            let (status, text) = route(&method, &path, &shared, busy, arrived).await;
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(())
                .unwrap_or_default();
            if let Ok(mut send) = respond.send_response(response, false) {
                let _ = send.send_data(bytes::Bytes::from(text), true);
            }
        });
    }
    Ok(())
}

async fn route(
    method: &str,
    path: &str,
    s: &Shared,
    busy: usize,
    arrived: Instant,
) -> (u16, String) {
    let record = |s: &Shared| {
        if let Ok(mut a) = s.arrivals.lock() {
            a.push(arrived);
        }
    };
    if let Some(rest) = path.strip_prefix("/tickets") {
        return ticket(method, rest, s, record).await;
    }
    match (method, path) {
        ("GET", "/counter") => (
            200,
            format!("{{\"value\": {}}}", s.state.lock().await.counter),
        ),
        ("POST", "/counter/incr-racy") => {
            record(s);
            let current = s.state.lock().await.counter;
            tokio::time::sleep(s.window).await;
            s.state.lock().await.counter = current + 1;
            (200, format!("{{\"value\": {}}}", current + 1))
        }
        ("POST", "/counter/decr-racy") => {
            record(s);
            let current = s.state.lock().await.counter;
            tokio::time::sleep(s.window).await;
            s.state.lock().await.counter = current - 1;
            (200, format!("{{\"value\": {}}}", current - 1))
        }
        ("POST", "/counter/incr-safe") => {
            record(s);
            let mut st = s.state.lock().await;
            tokio::time::sleep(s.window).await;
            st.counter += 1;
            (200, format!("{{\"value\": {}}}", st.counter))
        }
        ("GET", "/coupon") => {
            let st = s.state.lock().await;
            (
                200,
                format!(
                    "{{\"redeemed\": {}, \"redemptions\": {}}}",
                    st.redeemed, st.redemptions
                ),
            )
        }
        ("POST", "/coupon/redeem-racy") => {
            record(s);
            let redeemed = s.state.lock().await.redeemed;
            if redeemed {
                return (409, "{\"error\": \"already redeemed\"}".into());
            }
            tokio::time::sleep(s.window).await;
            let mut st = s.state.lock().await;
            st.redeemed = true;
            st.redemptions += 1;
            (200, "{\"redeemed\": true}".into())
        }
        ("POST", "/coupon/redeem-safe") => {
            record(s);
            let mut st = s.state.lock().await;
            if st.redeemed {
                return (409, "{\"error\": \"already redeemed\"}".into());
            }
            tokio::time::sleep(s.window).await;
            st.redeemed = true;
            st.redemptions += 1;
            (200, "{\"redeemed\": true}".into())
        }
        ("POST", "/flaky") => {
            record(s);
            tokio::time::sleep(s.window).await;
            if busy > 0 {
                (500, "{\"error\": \"lock timeout\"}".into())
            } else {
                (200, "{}".into())
            }
        }
        ("POST", "/limited") => {
            record(s);
            if busy >= 3 {
                return (429, "{\"error\": \"slow down\"}".into());
            }
            tokio::time::sleep(s.window).await;
            (200, "{}".into())
        }
        ("POST", "/unlimited") => {
            record(s);
            tokio::time::sleep(s.window).await;
            (200, "{}".into())
        }
        ("POST", "/reset") => {
            *s.state.lock().await = State::default();
            (200, "{}".into())
        }
        ("GET", "/arrivals") => {
            let a = s.arrivals.lock().map(|a| a.clone()).unwrap_or_default();
            let first = a.iter().min().copied();
            let micros: Vec<u128> = a
                .iter()
                .map(|t| first.map(|f| t.duration_since(f).as_micros()).unwrap_or(0))
                .collect();
            (
                200,
                serde_json::json!({ "arrivals_us": micros }).to_string(),
            )
        }
        ("POST", "/arrivals/reset") => {
            if let Ok(mut a) = s.arrivals.lock() {
                a.clear();
            }
            (200, "{}".into())
        }
        _ => (404, "{\"error\": \"not found\"}".into()),
    }
}
