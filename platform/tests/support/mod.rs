//! What the platform's end-to-end tests share: the real binary started on
//! a free port (and killed if a test fails first), and a one-shot HTTP call.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
pub fn call(addr: SocketAddr, method: &str, target: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}
