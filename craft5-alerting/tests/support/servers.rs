//! Local test servers that record exactly what they were sent: an HTTP
//! server (every request's method, path, headers and body; answers scripted
//! per request, 200 by default) and a minimal SMTP server (the envelope and
//! the DATA). Both listen on 127.0.0.1 port 0, serve one connection at a
//! time on their own thread, and stop when dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    statuses: Mutex<VecDeque<u16>>,
    stop: AtomicBool,
}

/// An HTTP server recording every request.
pub struct HttpRecorder {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn accept_loop(listener: TcpListener, stop: impl Fn() -> bool, mut serve: impl FnMut(TcpStream)) {
    listener.set_nonblocking(true).expect("nonblocking");
    while !stop() {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                serve(stream);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

impl HttpRecorder {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            statuses: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let stop = {
                    let shared = shared.clone();
                    move || shared.stop.load(Ordering::Acquire)
                };
                accept_loop(listener, stop, |stream| serve_http(stream, &shared));
            })
        };
        HttpRecorder {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The statuses of the next answers, in order; then 200 again.
    pub fn respond_with(&self, statuses: &[u16]) {
        self.shared.statuses.lock().extend(statuses.iter().copied());
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().clone()
    }

    /// Waits (at most `timeout`) until `count` requests arrived.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count || Instant::now() >= deadline {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_http(stream: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut stream = stream;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    shared.requests.lock().push(RecordedRequest {
        method,
        path,
        headers,
        body,
    });
    let status = shared.statuses.lock().pop_front().unwrap_or(200);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Scripted\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    let _ = stream.flush();
}

/// One message as the SMTP server got it.
#[derive(Debug, Clone, Default)]
pub struct RecordedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA, dot-unstuffed, without the final `.` line.
    pub data: String,
}

impl RecordedMail {
    /// The value of a header in the DATA.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.data.split_once("\r\n\r\n")?;
        head.split("\r\n").find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The body after the header block.
    pub fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

struct SmtpShared {
    mails: Mutex<Vec<RecordedMail>>,
    reject_rcpt: Mutex<Option<u16>>,
    stop: AtomicBool,
}

/// A minimal SMTP server: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
pub struct SmtpRecorder {
    addr: SocketAddr,
    shared: Arc<SmtpShared>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpRecorder {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(SmtpShared {
            mails: Mutex::new(Vec::new()),
            reject_rcpt: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let stop = {
                    let shared = shared.clone();
                    move || shared.stop.load(Ordering::Acquire)
                };
                accept_loop(listener, stop, |stream| serve_smtp(stream, &shared));
            })
        };
        SmtpRecorder {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `host:port`.
    pub fn smarthost(&self) -> String {
        self.addr.to_string()
    }

    /// Answer RCPT with this code (e.g. 550) from now on.
    pub fn reject_recipients_with(&self, code: u16) {
        *self.shared.reject_rcpt.lock() = Some(code);
    }

    pub fn mails(&self) -> Vec<RecordedMail> {
        self.shared.mails.lock().clone()
    }
}

impl Drop for SmtpRecorder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_smtp(stream: TcpStream, shared: &SmtpShared) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut stream = stream;
    let reply = |stream: &mut TcpStream, text: &str| {
        let _ = stream.write_all(text.as_bytes());
        let _ = stream.flush();
    };
    reply(&mut stream, "220 localhost ESMTP test server\r\n");
    let mut mail = RecordedMail::default();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            reply(&mut stream, "250-localhost\r\n250 8BITMIME\r\n");
        } else if upper.starts_with("MAIL FROM:") {
            mail = RecordedMail {
                from: command[10..].trim().to_string(),
                ..RecordedMail::default()
            };
            reply(&mut stream, "250 OK\r\n");
        } else if upper.starts_with("RCPT TO:") {
            match *shared.reject_rcpt.lock() {
                Some(code) => reply(&mut stream, &format!("{code} no such user\r\n")),
                None => {
                    mail.to.push(command[8..].trim().to_string());
                    reply(&mut stream, "250 OK\r\n");
                }
            }
        } else if upper == "DATA" {
            reply(&mut stream, "354 end with <CRLF>.<CRLF>\r\n");
            let mut data = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                let line = line
                    .strip_prefix('.')
                    .filter(|_| line.starts_with(".."))
                    .unwrap_or(&line);
                data.push_str(line);
            }
            mail.data = data.strip_suffix("\r\n").unwrap_or(&data).to_string();
            shared.mails.lock().push(std::mem::take(&mut mail));
            reply(&mut stream, "250 OK queued\r\n");
        } else if upper == "QUIT" {
            reply(&mut stream, "221 bye\r\n");
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            reply(&mut stream, "250 OK\r\n");
        } else {
            reply(&mut stream, "502 not implemented\r\n");
        }
    }
}
