//! The interleaving proxy and the probe's client side, tried as a hostile client would (issue
//! 20 §3). Real sockets on 127.0.0.1: raw bytes in, raw bytes out, and a real upstream that
//! counts what reaches it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racecheck::probe::interleave::{self, Proxy};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Long enough for a slow, shared machine; a hang on the old code shows as this timeout.
const PATIENCE: Duration = Duration::from_secs(20);

/// An upstream that answers every request `{}` and keeps every byte it was sent.
#[derive(Clone, Default)]
struct Upstream {
    received: Arc<Mutex<Vec<u8>>>,
    requests: Arc<Mutex<usize>>,
}

impl Upstream {
    async fn start() -> (Upstream, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let up = Upstream::default();
        let u = up.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let u = u.clone();
                tokio::spawn(async move {
                    let _ = u.serve(s).await;
                });
            }
        });
        (up, addr)
    }

    /// Frames requests by `Content-Length` alone, as the upstream a smuggler aims at does
    /// (a chunked request without a length is read as chunked so the old code is answered).
    async fn serve(&self, s: TcpStream) -> std::io::Result<()> {
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        loop {
            let mut head = Vec::new();
            loop {
                let n = r.read_until(b'\n', &mut head).await?;
                if n == 0 {
                    return Ok(());
                }
                self.received
                    .lock()
                    .unwrap()
                    .extend_from_slice(&head[head.len() - n..]);
                if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(n) = length {
                let mut body = vec![0; n];
                r.read_exact(&mut body).await?;
                self.received.lock().unwrap().extend_from_slice(&body);
            } else if text.contains("transfer-encoding") {
                loop {
                    let mut line = Vec::new();
                    r.read_until(b'\n', &mut line).await?;
                    let size = usize::from_str_radix(
                        String::from_utf8_lossy(&line)
                            .trim()
                            .split(';')
                            .next()
                            .unwrap_or(""),
                        16,
                    )
                    .unwrap_or(0);
                    let mut chunk = vec![0; size.min(1 << 20) + 2];
                    r.read_exact(&mut chunk).await?;
                    self.received.lock().unwrap().extend_from_slice(&line);
                    self.received.lock().unwrap().extend_from_slice(&chunk);
                    if size == 0 {
                        break;
                    }
                }
            }
            *self.requests.lock().unwrap() += 1;
            w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: 2\r\n\r\n{}")
                .await?;
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

/// A proxy on a free loopback port in front of a fresh upstream.
async fn proxy() -> (SocketAddr, Upstream) {
    let (up, up_addr) = Upstream::start().await;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(Proxy::default().serve(l, up_addr));
    (addr, up)
}

/// One answer: status, head (lower case) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Read one response by its `Content-Length` (the proxy's answers carry one); `None` when the
/// connection ends first or nothing comes within [`PATIENCE`].
async fn answer<R: tokio::io::AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<Answer> {
    tokio::time::timeout(PATIENCE, async {
        let mut head = Vec::new();
        loop {
            let n = r.read_until(b'\n', &mut head).await.ok()?;
            if n == 0 {
                return None;
            }
            if head.ends_with(b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        r.read_exact(&mut body).await.ok()?;
        Some(Answer { status, head, body })
    })
    .await
    .ok()
    .flatten()
}

/// Send `bytes` on a new connection and read one answer.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Answer> {
    let s = TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = s.into_split();
    w.write_all(bytes).await.ok()?;
    answer(&mut BufReader::new(r)).await
}

fn get_item(addr: SocketAddr, key: &str) -> Vec<u8> {
    let body = format!(r#"{{"TableName":"t","Key":{{"id":{{"S":"{key}"}}}}}}"#);
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n\
         Content-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn control(addr: SocketAddr, what: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /__racecheck/{what} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// 1. Idle connections.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_idle_connections_do_not_stop_a_real_request() {
    let (addr, up) = proxy().await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let a = exchange(addr, &get_item(addr, "a"))
        .await
        .expect("an answer while 300 connections sit idle");
    assert_eq!(a.status, 200);
    assert_eq!(up.requests(), 1);
    drop(idle);
}

// 2. The parser.

#[tokio::test]
async fn a_chunk_size_near_2_pow_64_is_a_413_and_the_proxy_keeps_serving() {
    let (addr, up) = proxy().await;
    for size in [
        "FFFFFFFFFFFFFFFF",
        "FFFFFFFFFFFFFFFE",
        "10000000000000000000000",
    ] {
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nab\r\n0\r\n\r\n"
        );
        let a = exchange(addr, req.as_bytes())
            .await
            .unwrap_or_else(|| panic!("no answer to a chunk of size {size}"));
        // Over the body bound however many digits: refused as too large, never wrapped.
        assert_eq!(a.status, 413, "{size}: {a:?}");
    }
    assert_eq!(up.requests(), 0);
    let a = exchange(addr, &get_item(addr, "a"))
        .await
        .expect("still serving");
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_chunk_over_the_body_limit_and_too_many_headers_are_refused() {
    let (addr, up) = proxy().await;
    let req =
        format!("POST / HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n1000001\r\n");
    let a = exchange(addr, req.as_bytes()).await.expect("an answer");
    assert_eq!(a.status, 413, "{a:?}");
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("POST / HTTP/1.1\r\nHost: {addr}\r\n{many}Content-Length: 0\r\n\r\n");
    let a = exchange(addr, req.as_bytes()).await.expect("an answer");
    assert_eq!(a.status, 431, "{a:?}");
    assert_eq!(up.requests(), 0);
}

// 3. Framing: what could be read two ways is refused; what is forwarded is framed one way.

#[tokio::test]
async fn ambiguous_framing_is_refused_before_anything_reaches_the_upstream() {
    let (addr, up) = proxy().await;
    let smuggled = "GET /admin HTTP/1.1\r\nHost: db\r\n\r\n";
    let cases = [
        (
            "length and chunked",
            format!(
                "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
                5 + smuggled.len()
            ),
        ),
        (
            "two lengths",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{{}}"),
        ),
        (
            "a list of lengths",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2, 2\r\n\r\n{{}}"),
        ),
        (
            "a coding before chunked",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ),
        (
            "chunked in other words",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
        ),
        (
            "a space before the colon",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\n{{}}"),
        ),
        (
            "a folded header",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n Content-Length: 99\r\nContent-Length: 2\r\n\r\n{{}}"),
        ),
        (
            "bare LF line ends",
            format!("POST / HTTP/1.1\nHost: {addr}\nContent-Length: 2\n\n{{}}"),
        ),
        (
            "a bare CR inside a header",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nX-A: a\rContent-Length: 40\r\nContent-Length: 2\r\n\r\n{{}}"),
        ),
        (
            "a signed length",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: +2\r\n\r\n{{}}"),
        ),
    ];
    for (what, req) in cases {
        let a = exchange(addr, req.as_bytes())
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(a.status, 400, "{what}: {a:?}");
        assert!(
            a.head.contains("connection: close"),
            "{what}: the connection is closed"
        );
    }
    assert_eq!(
        up.bytes(),
        b"",
        "nothing reached the upstream: {:?}",
        String::from_utf8_lossy(&up.bytes())
    );
}

#[tokio::test]
async fn a_chunked_request_reaches_the_upstream_framed_by_its_length() {
    let (addr, up) = proxy().await;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n\
         Transfer-Encoding: chunked\r\n\r\n3;x=y\r\n{{\"T\r\n6\r\nable\":\r\n3\r\n\"t\"\r\n1\r\n}}\r\n0\r\nX-Trailer: z\r\n\r\n"
    );
    let a = exchange(addr, req.as_bytes()).await.expect("an answer");
    assert_eq!(a.status, 200);
    let seen = String::from_utf8_lossy(&up.bytes()).to_ascii_lowercase();
    assert!(seen.contains("content-length: 13\r\n"), "{seen}");
    assert!(!seen.contains("transfer-encoding"), "{seen}");
    assert!(seen.ends_with("\r\n\r\n{\"table\":\"t\"}"), "{seen}");
}

// 4. The armed record.

/// A connection to the proxy at `addr`, armed for bursts of one.
async fn armed(
    addr: std::net::SocketAddr,
) -> (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let s = TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    w.write_all(&control(addr, "arm", "", r#"{"parties":1}"#))
        .await
        .unwrap();
    assert_eq!(answer(&mut r).await.expect("armed").status, 200);
    (r, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_armed_record_keeps_no_bodies() {
    let (addr, _up) = proxy().await;
    let (mut r, mut w) = armed(addr).await;
    let big = "k".repeat(1 << 20);
    for i in 0..24 {
        w.write_all(&get_item(addr, &format!("{i}{big}")))
            .await
            .unwrap();
        assert_eq!(answer(&mut r).await.expect("a read").status, 200);
    }
    w.write_all(&control(addr, "disarm", "", "")).await.unwrap();
    let a = answer(&mut r).await.expect("disarmed");
    assert_eq!(a.status, 200);
    assert!(
        a.body.len() < 256 * 1024,
        "24 reads of 1 MiB keys gave a {} byte record",
        a.body.len()
    );
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 24);
    assert!(events[0]["item"].as_str().unwrap().starts_with("t "));
    assert_eq!(v["dropped"], 0, "{}", &v.to_string()[..200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_armed_record_stops_at_ten_thousand_events_and_counts_the_rest() {
    let (addr, _up) = proxy().await;
    let (mut r, mut w) = armed(addr).await;
    // Written by one task while this one reads, so neither side waits on the other.
    let writer = tokio::spawn(async move {
        for i in 0..10_050 {
            w.write_all(&get_item(addr, &i.to_string())).await.unwrap();
        }
        w
    });
    for _ in 0..10_050 {
        assert_eq!(answer(&mut r).await.expect("a read").status, 200);
    }
    let mut w = writer.await.unwrap();
    w.write_all(&control(addr, "disarm", "", "")).await.unwrap();
    let a = answer(&mut r).await.expect("disarmed");
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 10_000);
    assert_eq!(v["dropped"], 50);
}

// 5. Control requests from a web page, or through a rebound name.

#[tokio::test]
async fn control_requests_from_a_page_or_a_foreign_host_are_refused() {
    let (addr, _up) = proxy().await;
    let port = addr.port();
    let refused = [
        (
            "a foreign Origin",
            control(addr, "arm", "Origin: http://evil.example\r\n", r#"{"parties":2}"#),
        ),
        (
            "a null Origin",
            control(addr, "disarm", "Origin: null\r\n", ""),
        ),
        (
            "a rebound Host",
            format!("POST /__racecheck/disarm HTTP/1.1\r\nHost: evil.example:{port}\r\nContent-Length: 0\r\n\r\n").into_bytes(),
        ),
        (
            "the right name, another port",
            format!("POST /__racecheck/disarm HTTP/1.1\r\nHost: localhost:{}\r\nContent-Length: 0\r\n\r\n", port.wrapping_add(1)).into_bytes(),
        ),
    ];
    for (what, req) in refused {
        let a = exchange(addr, &req)
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(a.status, 403, "{what}: {a:?}");
    }
    let get = format!("GET /__racecheck/disarm HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let a = exchange(addr, get.as_bytes()).await.expect("an answer");
    assert_eq!(a.status, 405, "{a:?}");
    for host in [addr.to_string(), format!("localhost:{port}")] {
        let req = format!(
            "POST /__racecheck/disarm HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
        );
        let a = exchange(addr, req.as_bytes()).await.expect("an answer");
        assert_eq!(a.status, 200, "{host}: {a:?}");
    }
}

// 6. The probe's side: a proxy (or whatever listens there) that answers without end.

/// A server that answers every request with `total` bytes of a JSON record, chunked.
async fn flood(total: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let mut line = String::new();
                while r.read_line(&mut line).await.is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let event = format!(
                    r#"{{"operation":"GetItem","item":"{}"}},"#,
                    "x".repeat(64 * 1024)
                );
                let _ = w
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let mut chunks = vec![r#"{"armed":true,"events":["#.to_string()];
                let mut sent = 0;
                while sent < total {
                    sent += event.len();
                    chunks.push(event.clone());
                }
                chunks.push(r#"{"operation":"GetItem","item":"x"}]}"#.into());
                for c in chunks {
                    let framed = format!("{:x}\r\n{c}\r\n", c.len());
                    if w.write_all(framed.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = w.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_reads_a_bounded_control_answer() {
    let addr = flood(48 << 20).await;
    let url = format!("http://{addr}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let e = interleave::remote_disarm(&client, &url)
        .await
        .expect_err("a 48 MiB record is refused");
    assert!(e.contains("32 MiB"), "{e}");
    let arm = interleave::Arm {
        parties: 2,
        hold_ms: 10,
    };
    let e = interleave::remote_arm(&client, &url, &arm)
        .await
        .expect_err("a 48 MiB answer to arm is refused");
    assert!(e.contains("32 MiB"), "{e}");
    // Under the cap, the record is read.
    let small = flood(1 << 20).await;
    interleave::remote_disarm(&client, &format!("http://{small}"))
        .await
        .expect("a 1 MiB record is read");
}

// Bounds in time, with short limits so the tests do not wait for the defaults.

/// A proxy with `limits` in front of `upstream`.
async fn proxy_with(limits: interleave::Limits, upstream: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(Proxy::with_limits(limits).serve(l, upstream));
    addr
}

/// A database that takes connections and never answers; counts the connections.
async fn silent() -> (SocketAddr, Arc<Mutex<Vec<TcpStream>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            h.lock().unwrap().push(s);
        }
    });
    (addr, held)
}

fn short() -> interleave::Limits {
    interleave::Limits {
        idle: Duration::from_millis(300),
        request: Duration::from_millis(300),
        upstream: Duration::from_millis(300),
        ..interleave::Limits::default()
    }
}

#[tokio::test]
async fn a_request_sent_slowly_is_cut_at_its_deadline_and_an_idle_one_is_closed() {
    let (_up, up_addr) = Upstream::start().await;
    let addr = proxy_with(short(), up_addr).await;
    let a = exchange(
        addr,
        format!("POST / HTTP/1.1\r\nHost: {addr}\r\n").as_bytes(),
    )
    .await
    .expect("an answer to a head never finished");
    assert_eq!(a.status, 408, "{a:?}");
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(PATIENCE, idle.read(&mut buf))
        .await
        .expect("an idle connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_database_that_never_answers_gets_a_504() {
    let (db, _held) = silent().await;
    let addr = proxy_with(short(), db).await;
    let a = exchange(addr, &get_item(addr, "a"))
        .await
        .expect("an answer");
    assert_eq!(a.status, 504, "{a:?}");
}

#[tokio::test]
async fn when_every_connection_is_at_work_a_new_one_hears_so() {
    let (db, held) = silent().await;
    let limits = interleave::Limits {
        connections: 1,
        upstream: Duration::from_secs(10),
        ..interleave::Limits::default()
    };
    let addr = proxy_with(limits, db).await;
    let mut working = TcpStream::connect(addr).await.unwrap();
    working.write_all(&get_item(addr, "a")).await.unwrap();
    // Once the database holds its connection, the request is at work: it is not evicted.
    tokio::time::timeout(PATIENCE, async {
        while held.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the request reached the database");
    let a = exchange(addr, &get_item(addr, "b"))
        .await
        .expect("an answer");
    assert_eq!(a.status, 503, "{a:?}");
    drop(working);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_arms_and_disarms_a_real_proxy() {
    let (addr, _up) = proxy().await;
    let url = format!("http://{addr}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    interleave::remote_arm(
        &client,
        &url,
        &interleave::Arm {
            parties: 1,
            hold_ms: 10,
        },
    )
    .await
    .unwrap();
    let long = "k".repeat(5_000);
    assert_eq!(
        exchange(addr, &get_item(addr, &long)).await.unwrap().status,
        200
    );
    let record = interleave::remote_disarm(&client, &url).await.unwrap();
    assert_eq!(record.events.len(), 1);
    assert_eq!(record.dropped, 0);
    assert!(record.events[0].item.len() <= interleave::MAX_ITEM_TEXT + 3);
    assert!(record.events[0].item.ends_with('…'));
    let e = interleave::remote_disarm(&client, &format!("http://localhost:{}", addr.port()))
        .await
        .unwrap();
    assert!(e.events.is_empty());
}
