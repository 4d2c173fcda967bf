//! What the platform's end-to-end tests share: the real binary started on
//! a free port (and killed if a test fails first), peers from their Debian
//! packages started the same way, and a one-shot HTTP call.

#![allow(dead_code)] // each test file uses its own subset

pub mod exporter;
pub mod vector;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process killed when dropped, so no server outlives its test.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `platform --port 0 --host 127.0.0.1 <args> --data-dir <dir>` and
/// returns it with the address it printed. Its stdout is drained by a
/// thread so it never blocks on a full pipe.
pub fn start_platform(args: &[&str], data_dir: &Path) -> (Killed, SocketAddr) {
    let (child, addr, _output) = start_platform_with_output(args, data_dir);
    (child, addr)
}

/// As [`start_platform`], also handing over every later stdout line.
pub fn start_platform_with_output(
    args: &[&str],
    data_dir: &Path,
) -> (Killed, SocketAddr, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(["--port", "0", "--host", "127.0.0.1"])
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn platform");
    let stdout = child.stdout.take().expect("stdout");
    let child = Killed(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("platform exited before listening")
            .expect("line");
        if let Some(rest) = line.strip_prefix("[Ingestion] Server listening on ") {
            break rest
                .split_whitespace()
                .next()
                .expect("address")
                .parse()
                .expect("address");
        }
    };
    let (sender, output) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            // Keep draining even when nobody listens any more.
            let _ = sender.send(line);
        }
    });
    (child, addr, output)
}

/// One request on its own connection (`Connection: close`); the status and
/// body, or None when the server could not be reached or answered nothing.
/// A chunked body (Go's servers chunk answers above a few KB) is put back
/// together, so callers always see the JSON itself.
pub fn call(addr: SocketAddr, method: &str, target: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut rest = &raw[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return Some((status, String::from_utf8_lossy(rest).into_owned()));
    }
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A peer's binary from its Debian package, if installed.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
}

/// A port free at the moment of asking, for a peer that must be told one.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// Percent-encoding for a query parameter.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Starts a peer listening on a free port it is told (`spawn` builds the
/// command for that address), retrying when the port was taken in
/// between; ready when `ready_path` answers 200 within 30 s.
pub fn start_on_free_port(
    what: &str,
    ready_path: &str,
    spawn: &dyn Fn(SocketAddr) -> Command,
) -> (Killed, SocketAddr) {
    for _attempt in 0..3 {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut child = Killed(
            spawn(addr)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {what}: {e}")),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some((200, _)) = call(addr, "GET", ready_path, "") {
                return (child, addr);
            }
            if child.0.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("{what} did not become ready within 30 s (three attempts)");
}
