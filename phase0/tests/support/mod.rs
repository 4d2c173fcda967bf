//! Helpers for phase0's integration tests: start the real binary on
//! 127.0.0.1 port 0, talk raw HTTP to it, wait with bounds.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The phase0 binary running as a child process.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    output: Arc<Mutex<Vec<String>>>,
    lines: Receiver<String>,
}

impl Server {
    /// Starts `phase0 0 --host 127.0.0.1 --data-dir <tmp> <extra>`.
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_phase0"))
            .args(["0", "--host", "127.0.0.1", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn phase0");
        let stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    output.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("phase0 printed no 'Server listening on' line within 20 s");
            if let Some(rest) = line.strip_prefix("[Ingestion] Server listening on ") {
                let addr = rest.split_whitespace().next().unwrap();
                break addr.parse().expect("listening address");
            }
        };
        Server {
            child,
            addr,
            dir,
            output,
            lines,
        }
    }

    /// Everything printed to stdout so far.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Waits (bounded) until a stdout line contains `needle`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.output().into_iter().find(|l| l.contains(needle)) {
            return line;
        }
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(remaining) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}; output:\n{}",
                    self.output().join("\n")
                ),
            }
        }
    }

    pub fn data_file(&self) -> PathBuf {
        self.dir.path().join("phase0_metrics.jsonl")
    }

    /// Lines in the JSONL file.
    pub fn stored_lines(&self) -> Vec<String> {
        read_lines(&self.data_file())
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        wait_exit(&mut self.child, Duration::from_secs(20))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn read_lines(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

/// Polls `check` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[allow(unused_imports)] // each test file uses a different subset
pub use common::testkit::ingestion::{
    Reply, assert_error, get, post, read_reply, send as send_parts,
};

/// Writes `raw` in one go and reads the whole response (the server closes).
pub fn raw(addr: SocketAddr, raw: &[u8]) -> Reply {
    send_parts(addr, &[raw], Duration::ZERO)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
