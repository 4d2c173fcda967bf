//! A misbehaving exporter for the scrape tests: one listener on port 0, a
//! behaviour per path (`/slow` answers after 3 s, `/garbage` is not a
//! metrics page, `/big` is 10 MB, `/many` has 200 series, anything else
//! the small page [`GOOD`]), and the time of every request kept.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The exporter; the times each path was asked for, kept.
pub struct Exporter {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<(String, Instant)>>>,
}

/// The page most paths answer: a counter with a `job` label (a clash
/// with the target's), an info metric, a gauge.
pub const GOOD: &str = "# HELP app_requests_total Requests served.\n# TYPE app_requests_total counter\n\
app_requests_total{path=\"/a\",job=\"inner\"} 5\n\
app_requests_total{path=\"/b\",job=\"inner\"} 7\n\
app_debug_info{x=\"1\"} 1\n\
go_gc_seconds 0.1\n";

impl Exporter {
    /// Listens on a free port.
    pub fn start() -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let record = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || serve(stream, &record));
            }
        });
        Exporter { addr, hits }
    }

    /// When `path` was asked for.
    pub fn times(&self, path: &str) -> Vec<Instant> {
        self.hits
            .lock()
            .expect("hits")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, at)| *at)
            .collect()
    }
}

fn serve(stream: TcpStream, hits: &Mutex<Vec<(String, Instant)>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        hits.lock()
            .expect("hits")
            .push((path.clone(), Instant::now()));
        let body: Vec<u8> = match path.as_str() {
            "/slow" => {
                std::thread::sleep(Duration::from_secs(3));
                GOOD.as_bytes().to_vec()
            }
            "/garbage" => b"this is { not a metrics page\n".to_vec(),
            "/big" => {
                let mut page = Vec::with_capacity(10 << 20);
                let mut i = 0;
                while page.len() < 10 << 20 {
                    page.extend_from_slice(format!("big_series{{i=\"{i}\"}} 1\n").as_bytes());
                    i += 1;
                }
                page
            }
            "/many" => (0..200)
                .map(|i| format!("many_series{{i=\"{i}\"}} {i}\n"))
                .collect::<String>()
                .into_bytes(),
            _ => GOOD.as_bytes().to_vec(),
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&body).is_err() {
            return;
        }
    }
}
