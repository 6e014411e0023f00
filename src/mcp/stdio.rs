//! The stdio framing in front of rmcp. Every line a client sends gets an answer or reaches the
//! server: text that is not JSON is answered `-32700`, JSON that is not a JSON-RPC message
//! `-32600`, and a line over [`MAX_LINE`] bytes `-32600` with its size (its `id` when it can be
//! read), instead of being dropped while the client waits. Lines go out whole, so those answers
//! never interleave with the server's own: one task reads rmcp's output a whole line at a time
//! and the writer waits only on channels, whose `recv` loses nothing when another branch wins.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The longest request line accepted (15 MiB): an 8 MiB source file, JSON-escaped, fits. It
/// stays below rmcp's own bound, which drops longer lines without an answer, so every line too
/// long for rmcp is answered here.
pub const MAX_LINE: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH - 1024 * 1024;
const _: () = assert!(MAX_LINE + 2 <= rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH);

/// Lines waiting between the tasks: a client that stops reading slows the server down instead
/// of filling memory.
const QUEUE: usize = 16;

/// Room for one message in flight between the framing and rmcp.
const PIPE: usize = 64 * 1024;

/// The two ends of the framing.
pub struct Framed {
    /// What rmcp reads and writes.
    pub server: (DuplexStream, DuplexStream),
    /// Resolves when the client's input has ended.
    pub closed: oneshot::Receiver<()>,
    /// Ends once rmcp's last answer is out.
    pub writer: JoinHandle<()>,
}

/// Connect rmcp to `input` and `output` through the framing's two tasks.
pub fn framed<R, W>(input: R, output: W) -> Framed
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_server, server_in) = tokio::io::duplex(PIPE);
    let (server_out, from_server) = tokio::io::duplex(PIPE);
    let (answers, answered) = mpsc::channel::<String>(QUEUE);
    let (server_lines, from_server_lines) = mpsc::channel::<Vec<u8>>(QUEUE);
    let (close, closed) = oneshot::channel();
    tokio::spawn(async move {
        read_requests(input, to_server, answers).await;
        let _ = close.send(());
    });
    tokio::spawn(read_server_lines(from_server, server_lines));
    let writer = tokio::spawn(write_answers(from_server_lines, answered, output));
    Framed {
        server: (server_in, server_out),
        closed,
        writer,
    }
}

/// Forward each well-formed message to rmcp; answer the rest.
async fn read_requests<R: AsyncRead + Unpin>(
    input: R,
    mut to_server: DuplexStream,
    answers: mpsc::Sender<String>,
) {
    let mut input = BufReader::new(input);
    let mut line: Vec<u8> = vec![];
    loop {
        let (size, complete) = match read_line(&mut input, &mut line, MAX_LINE).await {
            Ok(Some(x)) => x,
            Ok(None) | Err(_) => break,
        };
        if !complete {
            let message = format!(
                "request of {size} bytes is over the {MAX_LINE} byte limit for one message; send less (a path instead of inline code)"
            );
            if answers
                .send(error_line(prefix_id(&line), -32600, &message))
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        match check(&line) {
            Ok(()) => {
                line.push(b'\n');
                if to_server.write_all(&line).await.is_err() {
                    break;
                }
            }
            Err(answer) => {
                if answers.send(answer).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to_server.shutdown().await;
}

/// The next line (without its `\n`) into `line`: its full size and whether it fit in `max`
/// bytes (a longer one keeps only its first bytes). `None` at the end of the input.
async fn read_line<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<(usize, bool)>> {
    line.clear();
    let mut size = 0usize;
    loop {
        let chunk = input.fill_buf().await?;
        if chunk.is_empty() {
            return Ok((size > 0).then_some((size, size <= max)));
        }
        let (take, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        let room = (max + 1).saturating_sub(line.len()).min(take);
        line.extend_from_slice(&chunk[..room]);
        size += take;
        input.consume(take + usize::from(end));
        if end {
            return Ok(Some((size, size <= max)));
        }
    }
}

/// What becomes of one line a client sends: `Ok` with the message rmcp receives, or the error
/// answer it gets instead (the fuzz target's entry).
#[doc(hidden)]
pub fn accept(line: &[u8]) -> Result<Option<rmcp::model::ClientJsonRpcMessage>, String> {
    check(line)?;
    Ok(serde_json::from_slice(line).ok())
}

/// Whether a line is a message for the server, or the error answer it gets instead.
fn check(line: &[u8]) -> Result<(), String> {
    let text = line.strip_suffix(b"\r").unwrap_or(line);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(error_line(
                Value::Null,
                -32700,
                &format!("parse error: not JSON ({e})"),
            ))
        }
    };
    let is_message = |v: &Value| {
        v.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
            && ["method", "result", "error"]
                .iter()
                .any(|k| v.get(k).is_some())
    };
    match &value {
        Value::Object(_) if is_message(&value) => Ok(()),
        Value::Array(items) if !items.is_empty() && items.iter().all(is_message) => Ok(()),
        _ => Err(error_line(
            value.get("id").cloned().unwrap_or(Value::Null),
            -32600,
            "invalid request: a JSON-RPC 2.0 message needs `\"jsonrpc\": \"2.0\"` and a `method` (requests and notifications) or a `result`/`error` (responses)",
        )),
    }
}

/// The `id` of an oversize request when it appears near the start (`{"jsonrpc":"2.0","id":7,...`).
fn prefix_id(line: &[u8]) -> Value {
    let head = String::from_utf8_lossy(&line[..line.len().min(256)]);
    let Some(at) = head.find("\"id\"") else {
        return Value::Null;
    };
    let rest = head[at + 4..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return Value::Null;
    };
    let mut stream = serde_json::Deserializer::from_str(rest.trim_start()).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v @ (Value::Number(_) | Value::String(_)))) => v,
        _ => Value::Null,
    }
}

fn error_line(id: Value, code: i64, message: &str) -> String {
    let answer = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    tracing::warn!(code, message, "answered a malformed message");
    answer.to_string()
}

/// Read rmcp's output a whole line at a time. Outside any `select!`, so no line is ever cut:
/// the writer receives complete lines or nothing.
async fn read_server_lines(from_server: DuplexStream, lines: mpsc::Sender<Vec<u8>>) {
    let mut from_server = BufReader::new(from_server);
    loop {
        let mut line = Vec::new();
        match from_server.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                if lines.send(line).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Write rmcp's lines and the framing's answers to `output`, each whole. Both branches wait on
/// a channel's `recv`, which is cancel-safe: the branch that loses the race loses nothing.
async fn write_answers<W: AsyncWrite + Unpin>(
    mut from_server: mpsc::Receiver<Vec<u8>>,
    mut answered: mpsc::Receiver<String>,
    mut output: W,
) {
    let (mut server_open, mut answers_open) = (true, true);
    loop {
        let line = tokio::select! {
            line = from_server.recv(), if server_open => match line {
                Some(l) => l,
                None => {
                    server_open = false;
                    continue;
                }
            },
            answer = answered.recv(), if answers_open => match answer {
                Some(a) => {
                    let mut l = a.into_bytes();
                    l.push(b'\n');
                    l
                }
                None => {
                    answers_open = false;
                    continue;
                }
            },
            else => break,
        };
        if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
    let _ = output.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_what_is_not_a_message() {
        let parse = check(b"{bad").unwrap_err();
        assert!(parse.contains("-32700"), "{parse}");
        let invalid = check(br#"{"id": 4, "hello": 1}"#).unwrap_err();
        assert!(
            invalid.contains("-32600") && invalid.contains("\"id\":4"),
            "{invalid}"
        );
        assert!(check(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_ok());
        assert!(check(b"   ").is_ok());
    }

    #[test]
    fn reads_the_id_of_an_oversize_request() {
        assert_eq!(
            prefix_id(br#"{"jsonrpc":"2.0","id": 17,"params":"#),
            json!(17)
        );
        assert_eq!(prefix_id(br#"{"id":"a-1","#), json!("a-1"));
        assert_eq!(prefix_id(br#"{"jsonrpc":"2.0","params":{"#), Value::Null);
    }
}
