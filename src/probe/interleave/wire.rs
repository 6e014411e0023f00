//! The proxy's HTTP/1.1: a strict reader for requests (from the service under test, or anyone
//! on this machine) and responses (from the database), and the writer that forwards them.
//!
//! Strict because the proxy sits between two parsers: anything the upstream could frame
//! differently from the proxy (a length and a chunked coding, two lengths, a folded or
//! CR-split header) is refused with a 4xx before a byte is forwarded, and what is forwarded is
//! framed one way only, by `Content-Length`. Every size is bounded and every sum checked, so no
//! byte a client sends can panic or exhaust the proxy.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Largest request or response body (DynamoDB's own request limit is 16 MB).
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Largest message head (start line and fields), and largest trailer section.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head (or trailer section).
pub const MAX_FIELDS: usize = 100;
/// Longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Interim (1xx) responses skipped before a final one.
const MAX_INTERIM: usize = 8;

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message breaks the grammar or a bound: answer `status` with `why`, then close (the
    /// rest of the stream cannot be trusted to start a message).
    #[error("{why}")]
    Refused { status: u16, why: String },
    /// The stream ended inside a message.
    #[error("the connection ended inside a message")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn bad(why: impl Into<String>) -> Error {
    Error::Refused {
        status: 400,
        why: why.into(),
    }
}

fn too_large(status: u16, why: impl Into<String>) -> Error {
    Error::Refused {
        status,
        why: why.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    fn parse(v: &[u8]) -> Option<Version> {
        match v {
            b"HTTP/1.1" => Some(Version::Http11),
            b"HTTP/1.0" => Some(Version::Http10),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How a body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(usize),
    Chunked,
    /// A response that ends with its connection.
    UntilClose,
}

/// Header fields as sent (names keep their case), looked up without regard to case.
#[derive(Clone, Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated field (`Connection`) lists `token`.
    fn lists(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The fields except the framing ones, each on its line.
    fn write_except_framing(&self, out: &mut Vec<u8>) {
        for (k, v) in &self.0 {
            if k.eq_ignore_ascii_case("content-length")
                || k.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            write_field(out, k, v);
        }
    }
}

fn write_field(out: &mut Vec<u8>, k: &str, v: &str) {
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(v.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A request head, read and checked.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub fields: Fields,
    pub framing: Framing,
}

impl RequestHead {
    /// The target's path, without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Whether the client waits for `100 Continue` before it sends its body.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self.framing != Framing::None
            && self
                .fields
                .get("expect")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// Whether the connection ends after this exchange.
    pub fn closes(&self) -> bool {
        closes(self.version, &self.fields)
    }
}

fn closes(version: Version, fields: &Fields) -> bool {
    fields.lists("connection", "close")
        || (version == Version::Http10 && !fields.lists("connection", "keep-alive"))
}

#[derive(Clone, Debug)]
pub struct Request {
    pub head: RequestHead,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.fields.get(name)
    }

    /// The request as forwarded: its start line and fields as read, framed by
    /// `Content-Length` alone (a chunked body arrives decoded, its trailers dropped).
    pub fn to_bytes(&self) -> Vec<u8> {
        let h = &self.head;
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(
            format!("{} {} {}\r\n", h.method, h.target, h.version.as_str()).as_bytes(),
        );
        h.fields.write_except_framing(&mut out);
        if h.framing != Framing::None {
            write_field(&mut out, "Content-Length", &self.body.len().to_string());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

#[derive(Clone, Debug)]
pub struct Response {
    pub version: Version,
    pub status: u16,
    pub reason: String,
    pub fields: Fields,
    pub framing: Framing,
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the upstream connection ends after this answer.
    pub fn closes(&self) -> bool {
        self.framing == Framing::UntilClose || closes(self.version, &self.fields)
    }

    /// The answer as forwarded: framed by `Content-Length` (an answer without a body, to HEAD
    /// or a 204 or 304, keeps its fields as they were).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(
            format!(
                "{} {} {}\r\n",
                self.version.as_str(),
                self.status,
                self.reason
            )
            .as_bytes(),
        );
        if self.framing == Framing::None {
            for (k, v) in &self.fields.0 {
                write_field(&mut out, k, v);
            }
        } else {
            self.fields.write_except_framing(&mut out);
            write_field(&mut out, "Content-Length", &self.body.len().to_string());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// An answer of the proxy's own.
pub fn answer(
    status: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
    close: bool,
) -> Vec<u8> {
    let reason = match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    write_field(&mut out, "Content-Type", content_type);
    write_field(&mut out, "Content-Length", &body.len().to_string());
    for (k, v) in extra {
        write_field(&mut out, k, v);
    }
    if close {
        write_field(&mut out, "Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// One line ending in CRLF, its content without the CRLF, within `max` bytes (CRLF included).
/// `Ok(None)` at the end of the stream before any byte.
async fn line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    what: &str,
    status: u16,
) -> Result<Option<Vec<u8>>, Error> {
    let mut buf = Vec::new();
    // `take` stops a line without LF at the bound instead of buffering it without end.
    let n = (&mut *r)
        .take(max as u64)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return if n >= max {
            Err(too_large(status, format!("{what} over {max} bytes")))
        } else {
            Err(Error::Truncated)
        };
    }
    buf.pop();
    if buf.pop() != Some(b'\r') {
        return Err(bad(format!("{what} ends in a bare LF (lines end in CRLF)")));
    }
    if buf.contains(&b'\r') {
        return Err(bad(format!("{what} holds a bare CR")));
    }
    Ok(Some(buf))
}

/// The lines of a head (or trailer section) up to its empty line. `Ok(None)` at the end of
/// the stream before any byte; `skip_blank` passes over empty lines before the first (RFC
/// 9112 §2.2: a client may send a CRLF after a request's body).
async fn head_lines<R: AsyncBufRead + Unpin>(
    r: &mut R,
    skip_blank: bool,
) -> Result<Option<Vec<Vec<u8>>>, Error> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut used = 0usize;
    loop {
        let left = MAX_HEAD.saturating_sub(used);
        if left == 0 {
            return Err(too_large(
                431,
                format!("message head over {MAX_HEAD} bytes"),
            ));
        }
        let Some(l) = line(r, left, "message head", 431).await? else {
            return if used == 0 {
                Ok(None)
            } else {
                Err(Error::Truncated)
            };
        };
        used = used.saturating_add(l.len() + 2);
        if l.is_empty() {
            if lines.is_empty() && skip_blank {
                continue;
            }
            return Ok(Some(lines));
        }
        lines.push(l);
        if lines.len() > MAX_FIELDS + 1 {
            return Err(too_large(
                431,
                format!("more than {MAX_FIELDS} header fields"),
            ));
        }
    }
}

/// RFC 9110 token characters (method, field name).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// One `name: value` line.
fn field(l: &[u8]) -> Result<(String, String), Error> {
    if l.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(bad(
            "a folded header line (obs-fold: a line that starts with a space or tab)",
        ));
    }
    let Some(colon) = l.iter().position(|&b| b == b':') else {
        return Err(bad("a header line without a colon"));
    };
    let (name, value) = (&l[..colon], &l[colon + 1..]);
    if !is_token(name) {
        // Catches `Transfer-Encoding : chunked` too, which some servers read and others skip.
        return Err(bad(format!(
            "header name `{}` is not a token (no spaces before the colon)",
            String::from_utf8_lossy(name)
        )));
    }
    let value = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map_or(&[][..], |start| {
            let end = value
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .map_or(start, |e| e + 1);
            &value[start..end]
        });
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(bad(format!(
            "header `{}` holds a control character",
            String::from_utf8_lossy(name)
        )));
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return Err(bad(format!(
            "header `{}` is not UTF-8",
            String::from_utf8_lossy(name)
        )));
    };
    // Both are checked text now: a token is ASCII.
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        value.to_string(),
    ))
}

fn fields(lines: &[Vec<u8>]) -> Result<Fields, Error> {
    lines
        .iter()
        .map(|l| field(l))
        .collect::<Result<_, _>>()
        .map(Fields)
}

/// A `Content-Length` value: digits only, at most [`MAX_BODY`].
fn length(v: &str, status: u16) -> Result<usize, Error> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("Content-Length `{v}` is not a number")));
    }
    // Digits past the bound need not be read: parse what fits, refuse the rest as too large.
    match v.parse::<usize>() {
        Ok(n) if n <= MAX_BODY => Ok(n),
        _ => Err(too_large(
            status,
            format!("Content-Length {v} is over {MAX_BODY} bytes"),
        )),
    }
}

/// How a message's body is framed, refusing every framing two parsers could read apart.
fn framing(f: &Fields, request: bool) -> Result<Framing, Error> {
    let lengths: Vec<&str> = f.all("content-length").collect();
    let codings: Vec<&str> = f.all("transfer-encoding").collect();
    let too_large_status = if request { 413 } else { 502 };
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err(bad(
                "both Content-Length and Transfer-Encoding (request smuggling): send one",
            ));
        }
        let all: Vec<&str> = codings.iter().flat_map(|v| v.split(',')).collect();
        if all.len() != 1 || !all[0].trim().eq_ignore_ascii_case("chunked") {
            return Err(bad(format!(
                "Transfer-Encoding `{}`: only `chunked` alone is accepted",
                codings.join(", ")
            )));
        }
        return Ok(Framing::Chunked);
    }
    match lengths.as_slice() {
        [] if request => Ok(Framing::None),
        [] => Ok(Framing::UntilClose),
        [one] => length(one, too_large_status).map(Framing::Length),
        _ => Err(bad("more than one Content-Length")),
    }
}

/// Read the next request's head; `Ok(None)` when the connection ends between requests.
pub async fn read_request_head<R: AsyncBufRead + Unpin>(
    r: &mut R,
) -> Result<Option<RequestHead>, Error> {
    let Some(lines) = head_lines(r, true).await? else {
        return Ok(None);
    };
    let Some((start, rest)) = lines.split_first() else {
        return Err(bad("an empty request head"));
    };
    let parts: Vec<&[u8]> = start.split(|&b| b == b' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(bad(
            "the request line is not `METHOD /path HTTP/1.1` (single spaces)",
        ));
    };
    if !is_token(method) {
        return Err(bad("the method is not a token"));
    }
    if target.first() != Some(&b'/') || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(bad("the request target is not a path starting with /"));
    }
    let Some(version) = Version::parse(version) else {
        return Err(bad("the version is not HTTP/1.1 or HTTP/1.0"));
    };
    let fields = fields(rest)?;
    // RFC 9112 §3.2: one Host, and an HTTP/1.1 request must have it.
    match (fields.all("host").count(), version) {
        (0, Version::Http11) => return Err(bad("no Host header")),
        (n, _) if n > 1 => return Err(bad("more than one Host header")),
        _ => {}
    }
    if version == Version::Http10 && fields.get("transfer-encoding").is_some() {
        return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
    }
    let framing = framing(&fields, true)?;
    Ok(Some(RequestHead {
        // Checked as tokens and visible ASCII above.
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        version,
        fields,
        framing,
    }))
}

/// Read a body framed as `framing` (at most [`MAX_BODY`]); `status` is the answer to one too
/// large (413 for a request, 502 for a response).
pub async fn read_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    framing: Framing,
    status: u16,
) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    match framing {
        Framing::None => {}
        Framing::Length(n) => {
            // Grown as bytes arrive, not reserved on the client's word.
            let got = (&mut *r).take(n as u64).read_to_end(&mut body).await?;
            if got < n {
                return Err(Error::Truncated);
            }
        }
        Framing::UntilClose => {
            (&mut *r)
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body)
                .await?;
            if body.len() > MAX_BODY {
                return Err(too_large(status, format!("body over {MAX_BODY} bytes")));
            }
        }
        Framing::Chunked => read_chunked(r, &mut body, status).await?,
    }
    Ok(body)
}

async fn read_chunked<R: AsyncBufRead + Unpin>(
    r: &mut R,
    body: &mut Vec<u8>,
    status: u16,
) -> Result<(), Error> {
    // Size lines are bounded one by one and in sum, so chunk extensions cannot stream forever.
    let mut overhead = 0usize;
    loop {
        let Some(l) = line(r, MAX_CHUNK_LINE, "a chunk-size line", 400).await? else {
            return Err(Error::Truncated);
        };
        overhead = overhead.saturating_add(l.len() + 2);
        if overhead > MAX_BODY {
            return Err(too_large(status, "chunk framing over 16 MiB"));
        }
        let digits = l.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(bad("a chunk size is not hexadecimal"));
        }
        let ext = &l[digits..];
        let ext_ok = {
            let rest = ext.iter().skip_while(|&&b| b == b' ' || b == b'\t');
            let rest: Vec<u8> = rest.copied().collect();
            (rest.is_empty() || rest[0] == b';')
                && rest
                    .iter()
                    .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
        };
        if !ext_ok {
            return Err(bad(
                "a chunk size is followed by something other than `;ext`",
            ));
        }
        let mut size = 0usize;
        for &d in &l[..digits] {
            let v = (d as char).to_digit(16).unwrap_or(0) as usize;
            // Checked so that `FFFFFFFFFFFFFFFF` (or longer) is refused, never wrapped.
            size = match size.checked_mul(16).and_then(|s| s.checked_add(v)) {
                Some(s) if s <= MAX_BODY => s,
                _ => return Err(too_large(status, format!("a chunk over {MAX_BODY} bytes"))),
            };
        }
        if size > MAX_BODY - body.len() {
            return Err(too_large(status, format!("body over {MAX_BODY} bytes")));
        }
        if size == 0 {
            // Trailer fields are read, checked and dropped: the forwarded body has a length.
            let lines = head_lines(r, false).await?.ok_or(Error::Truncated)?;
            fields(&lines)?;
            return Ok(());
        }
        let before = body.len();
        (&mut *r).take(size as u64).read_to_end(body).await?;
        if body.len() - before < size {
            return Err(Error::Truncated);
        }
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::Truncated,
            _ => Error::Io(e),
        })?;
        if &crlf != b"\r\n" {
            return Err(bad("a chunk is not followed by CRLF"));
        }
    }
}

/// Read a whole request (head and body): what the fuzz target drives.
pub async fn read_request<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<Request>, Error> {
    let Some(head) = read_request_head(r).await? else {
        return Ok(None);
    };
    let body = read_body(r, head.framing, 413).await?;
    Ok(Some(Request { head, body }))
}

/// Read the answer to a request (`to_head`: a HEAD request, whose answer has no body),
/// passing over interim 1xx answers; `Ok(None)` when the connection ends before any byte.
pub async fn read_response<R: AsyncBufRead + Unpin>(
    r: &mut R,
    to_head: bool,
) -> Result<Option<Response>, Error> {
    for _ in 0..=MAX_INTERIM {
        let Some(lines) = head_lines(r, false).await? else {
            return Ok(None);
        };
        let Some((start, rest)) = lines.split_first() else {
            return Err(bad("an empty response head"));
        };
        let mut parts = start.splitn(3, |&b| b == b' ');
        let version = parts.next().and_then(Version::parse);
        let code = parts.next().unwrap_or(b"");
        let reason = parts.next().unwrap_or(b"");
        let Some(version) = version else {
            return Err(bad("the status line's version is not HTTP/1.x"));
        };
        let status = match code {
            [a, b, c] if code.iter().all(u8::is_ascii_digit) => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(bad("the status is not three digits")),
        };
        if !(100..600).contains(&status) {
            return Err(bad(format!("status {status}")));
        }
        if reason
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(bad("the reason phrase holds a control character"));
        }
        let fields = fields(rest)?;
        if status == 101 {
            return Err(bad("101 Switching Protocols: the proxy does not tunnel"));
        }
        if status < 200 {
            continue;
        }
        let framing = if to_head || status == 204 || status == 304 {
            Framing::None
        } else {
            framing(&fields, false)?
        };
        let body = read_body(r, framing, 502).await?;
        return Ok(Some(Response {
            version,
            status,
            reason: String::from_utf8_lossy(reason).into_owned(),
            fields,
            framing,
            body,
        }));
    }
    Err(bad(format!("more than {MAX_INTERIM} interim answers")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn req(bytes: &[u8]) -> Result<Option<Request>, Error> {
        let mut r = tokio::io::BufReader::new(bytes);
        read_request(&mut r).await
    }

    fn status(e: Result<Option<Request>, Error>) -> u16 {
        match e {
            Err(Error::Refused { status, .. }) => status,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_chunked_request_is_forwarded_with_a_length() {
        let r = req(b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n2;e=1\r\nab\r\n1\r\nc\r\n0\r\nT: x\r\n\r\n")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.body, b"abc");
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        );
    }

    #[tokio::test]
    async fn sizes_are_checked_never_wrapped() {
        for size in [
            "FFFFFFFFFFFFFFFF",
            "1000001",
            "0000000000000000000000001000001",
        ] {
            let text = format!(
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\n"
            );
            assert_eq!(status(req(text.as_bytes()).await), 413, "{size}");
        }
        let text = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(status(req(text.as_bytes()).await), 413);
        assert!(matches!(
            req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab").await,
            Err(Error::Truncated)
        ));
    }

    #[tokio::test]
    async fn a_line_without_end_stops_at_the_head_bound() {
        let mut text = b"POST / HTTP/1.1\r\nX: ".to_vec();
        text.resize(MAX_HEAD * 4, b'a');
        assert_eq!(status(req(&text).await), 431);
    }

    #[tokio::test]
    async fn responses_skip_interim_answers_and_end_with_their_connection() {
        let mut r = tokio::io::BufReader::new(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX: y\r\n\r\nbody"[..],
        );
        let a = read_response(&mut r, false).await.unwrap().unwrap();
        assert_eq!(
            (a.status, a.framing, &a.body[..]),
            (200, Framing::UntilClose, &b"body"[..])
        );
        assert!(a.closes());
        assert_eq!(
            String::from_utf8(a.to_bytes()).unwrap(),
            "HTTP/1.1 200 OK\r\nX: y\r\nContent-Length: 4\r\n\r\nbody"
        );
        let mut r = tokio::io::BufReader::new(&b"HTTP/1.1 204 No Content\r\n\r\n"[..]);
        let a = read_response(&mut r, false).await.unwrap().unwrap();
        assert!(a.body.is_empty() && a.framing == Framing::None);
    }
}
