//! The burst engine. Every connection is opened first and each request is written except its
//! last byte; then the last bytes are released together in one tight loop (HTTP/1.1
//! last-byte synchronisation), so the requests complete at the server within microseconds of
//! each other. reqwest cannot hold back a last byte, hence raw tokio sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one request got back.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub status: Option<u16>,
    /// Lower-cased header names and values.
    pub headers: Vec<(String, String)>,
    pub error: Option<String>,
}

pub struct Burst {
    pub outcomes: Vec<Outcome>,
    /// Time between the first and the last last-byte write, at the client.
    pub release_spread: Duration,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// Send `n` copies of `request` to `addr`, synchronised on their last byte.
pub async fn last_byte(
    addr: SocketAddr,
    request: &[u8],
    n: usize,
    timeout: Duration,
) -> Result<Burst, String> {
    if request.len() < 2 {
        return Err("empty request".into());
    }
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let s = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                format!(
                    "connecting to {addr} timed out after {} ms",
                    timeout.as_millis()
                )
            })?
            .map_err(|e| format!("cannot connect to {addr}: {e}; is the service running?"))?;
        let _ = s.set_nodelay(true);
        streams.push(s);
    }
    let (prefix, last) = request.split_at(request.len() - 1);
    for s in &mut streams {
        tokio::time::timeout(timeout, s.write_all(prefix))
            .await
            .map_err(|_| format!("writing to {addr} timed out"))?
            .map_err(|e| format!("writing to {addr} failed: {e}"))?;
    }
    // Let the prefixes reach the server and be parsed; only the last byte is then missing.
    tokio::time::sleep(Duration::from_millis(30)).await;
    // Release on two threads at once, half the sockets each: one write per socket costs a few
    // microseconds on loopback, so halving the queue halves the spread.
    let std_streams: Vec<std::net::TcpStream> = streams
        .into_iter()
        .map(|s| s.into_std())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("preparing the release failed: {e}"))?;
    let (released, failed) = release(&std_streams, last[0]);
    if let Some(e) = failed {
        return Err(format!("releasing the burst to {addr} failed: {e}"));
    }
    let release_spread = match (released.iter().min(), released.iter().max()) {
        (Some(a), Some(b)) => b.duration_since(*a),
        _ => Duration::ZERO,
    };
    let streams: Vec<TcpStream> = std_streams
        .into_iter()
        .map(TcpStream::from_std)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading the burst's answers failed: {e}"))?;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(read_response(s, timeout)))
        .collect();
    let mut outcomes = Vec::with_capacity(n);
    for r in readers {
        outcomes.push(r.await.unwrap_or_else(|e| Outcome {
            error: Some(format!("reader failed: {e}")),
            ..Outcome::default()
        }));
    }
    Ok(Burst {
        outcomes,
        release_spread,
    })
}

/// Write the last byte to every socket, split over two threads that start together.
fn release(streams: &[std::net::TcpStream], last: u8) -> (Vec<Instant>, Option<String>) {
    use std::io::Write;
    let half = streams.len().div_ceil(2);
    let barrier = std::sync::Barrier::new(2);
    let run = |part: &[std::net::TcpStream]| -> (Vec<Instant>, Option<String>) {
        let mut times = Vec::with_capacity(part.len());
        barrier.wait();
        let deadline = Instant::now() + Duration::from_secs(2);
        for mut s in part {
            loop {
                match s.write(&[last]) {
                    Ok(1) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return (
                                times,
                                Some("the socket would not take the last byte for 2 s".into()),
                            );
                        }
                        std::thread::yield_now()
                    }
                    Err(e) => return (times, Some(e.to_string())),
                }
            }
            times.push(Instant::now());
        }
        (times, None)
    };
    let (a, b) = streams.split_at(half);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| run(b));
        let (mut times, mut err) = run(a);
        match other.join() {
            Ok((t, e)) => {
                times.extend(t);
                err = err.or(e);
            }
            Err(_) => err = Some("the release thread failed".into()),
        }
        (times, err)
    })
}

/// Read one HTTP/1.1 response (status line, headers, body by length or to the end).
async fn read_response(mut s: TcpStream, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, read_inner(&mut s)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome {
            error: Some(e),
            ..Outcome::default()
        },
        Err(_) => Outcome {
            error: Some(format!(
                "no complete response within {} ms",
                timeout.as_millis()
            )),
            ..Outcome::default()
        },
    }
}

/// Read one response from any byte stream (the fuzz target feeds it arbitrary bytes).
#[doc(hidden)]
pub async fn read_inner<S: AsyncRead + Unpin>(s: &mut S) -> Result<Outcome, String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err("response headers over 64 KiB".into());
        }
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "the connection was closed without a response".into()
            } else {
                format!("the response ended early: {}", printable(&buf))
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let (version, code) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let status = match (version.starts_with("HTTP/1."), code.parse::<u16>()) {
        (true, Ok(c)) if (100..600).contains(&c) => c,
        _ => {
            return Err(format!(
                "the answer is not HTTP/1.1: {}",
                printable(&buf[..end.min(80)])
            ))
        }
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = buf.len() - (end + 4);
    // Drain the body so the server is not cut off mid-write (bounded).
    while len.is_none_or(|l| body < l) && body < MAX_BODY {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body += n,
        }
    }
    Ok(Outcome {
        status: Some(status),
        headers,
        error: None,
    })
}

fn printable(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(b)
        .chars()
        .take(80)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("`{}`", s.trim())
}

/// The naive way, for comparison: `n` concurrent reqwest requests, no synchronisation.
pub async fn naive(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<String>,
    n: usize,
) -> Vec<Outcome> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let mut req = client.request(method.clone(), url);
            if let Some(b) = &body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.clone());
            }
            tokio::spawn(async move {
                match req.send().await {
                    Ok(r) => Outcome {
                        status: Some(r.status().as_u16()),
                        headers: vec![],
                        error: None,
                    },
                    Err(e) => Outcome {
                        error: Some(e.to_string()),
                        ..Outcome::default()
                    },
                }
            })
        })
        .collect();
    let mut out = vec![];
    for t in tasks {
        out.push(t.await.unwrap_or_default());
    }
    out
}

/// The HTTP/2 single-packet technique (cleartext, prior knowledge): one connection, `n`
/// streams each sent but for its final DATA frame, then all final frames queued together so
/// they leave in one write.
pub async fn single_packet(
    addr: SocketAddr,
    request: http::Request<()>,
    body: &[u8],
    n: usize,
    timeout: Duration,
) -> Result<Burst, String> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            format!(
                "connecting to {addr} timed out after {} ms",
                timeout.as_millis()
            )
        })?
        .map_err(|e| format!("cannot connect to {addr}: {e}; is the service running?"))?;
    let _ = tcp.set_nodelay(true);
    let (client, connection) = tokio::time::timeout(timeout, h2::client::handshake(tcp))
        .await
        .map_err(|_| format!("the HTTP/2 handshake with {addr} timed out"))?
        .map_err(|e| format!("{addr} does not speak HTTP/2 with prior knowledge (h2c): {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let (prefix, last) = match body.split_last() {
        Some((last, prefix)) => (prefix.to_vec(), vec![*last]),
        None => (vec![], vec![]),
    };
    let mut client = client;
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        client = tokio::time::timeout(timeout, client.ready())
            .await
            .map_err(|_| "the server accepts no more streams".to_string())?
            .map_err(|e| format!("HTTP/2 stream refused: {e}"))?;
        let mut req = http::Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone());
        for (k, v) in request.headers() {
            req = req.header(k, v);
        }
        let req = req.body(()).map_err(|e| format!("bad request: {e}"))?;
        let (response, mut send) = client
            .send_request(req, false)
            .map_err(|e| format!("sending a request failed: {e}"))?;
        if !prefix.is_empty() {
            send.send_data(bytes::Bytes::from(prefix.clone()), false)
                .map_err(|e| format!("sending a body failed: {e}"))?;
        }
        streams.push((response, send));
    }
    // Let every stream's head reach the server; then only the final frames are missing.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let start = Instant::now();
    for (_, send) in &mut streams {
        send.send_data(bytes::Bytes::from(last.clone()), true)
            .map_err(|e| format!("releasing the burst failed: {e}"))?;
    }
    let release_spread = start.elapsed();
    let mut outcomes = Vec::with_capacity(n);
    for (response, _) in streams {
        outcomes.push(match tokio::time::timeout(timeout, response).await {
            Ok(Ok(r)) => Outcome {
                status: Some(r.status().as_u16()),
                headers: r
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect(),
                error: None,
            },
            Ok(Err(e)) => Outcome {
                error: Some(format!("the stream failed: {e}")),
                ..Outcome::default()
            },
            Err(_) => Outcome {
                error: Some(format!(
                    "no complete response within {} ms",
                    timeout.as_millis()
                )),
                ..Outcome::default()
            },
        });
    }
    driver.abort();
    Ok(Burst {
        outcomes,
        release_spread,
    })
}
