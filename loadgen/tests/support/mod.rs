//! Shared by loadgen's end-to-end tests: the real binary, its
//! `null-server` started on port 0 (address read from its first line with
//! a bounded wait), and a helper to run loadgen to completion.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// Kills the server even when an assertion fails.
pub struct NullServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl Drop for NullServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_null_server() -> NullServer {
    let mut child = Command::new(LOADGEN)
        .args(["null-server", "--port", "0", "--host", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn null-server");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut server = NullServer {
        child,
        base_url: String::new(),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("null-server did not print its address within 10 s");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    server.base_url = format!("http://{addr}");
    server
}

pub fn loadgen(args: &[&str]) -> Output {
    Command::new(LOADGEN)
        .args(args)
        .output()
        .expect("run loadgen")
}
