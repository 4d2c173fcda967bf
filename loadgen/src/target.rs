//! Where the load goes: turns `--url` into a resolved socket address, the write
//! path, the health path and the Host header.
//!
//! Why a separate step: the name is resolved once, before the load starts.
//! With `burst` and `--no-keep-alive` every request opens a connection, and a
//! DNS lookup per connection would measure the resolver instead of the server.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};

pub const HEALTH_PATH: &str = "/health";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host as written in the URL (IPv6 keeps its brackets).
    pub host: String,
    pub port: u16,
    /// The value of the Host header: `host[:port]` as the user wrote it.
    pub authority: String,
    /// Path (and query) that POSTs go to.
    pub write_path: String,
}

impl Target {
    /// Accepts `http://host:port/path`, `http://host:port` and `host:port`;
    /// without a path (or with just `/`) the write path is
    /// `default_write_path` (the body format's, e.g. `/metrics`). Errors name
    /// the offending value.
    pub fn parse(raw: &str, default_write_path: &str) -> Result<Self> {
        let invalid = |why: &str| anyhow!("invalid --url '{raw}': {why}");
        let uri: hyper::Uri = raw.trim().parse().map_err(|e| invalid(&format!("{e}")))?;
        match uri.scheme_str() {
            None | Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "https is not supported; loadgen speaks plain HTTP/1.1",
                ));
            }
            Some(other) => return Err(invalid(&format!("unsupported scheme '{other}'"))),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("no host, expected e.g. http://127.0.0.1:8080/metrics"))?;
        let host = authority.host();
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        // `Authority::port()` silently drops an out-of-range port, so read
        // the text after the host ourselves: `host:99999` must not become :80.
        let host_and_port = authority.as_str().rsplit('@').next().unwrap_or_default();
        let port_text = host_and_port
            .rsplit_once(':')
            .map(|(_, port)| port)
            .filter(|port| !port.contains(']'));
        let port = match port_text {
            None | Some("") => 80,
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| invalid(&format!("invalid port '{port}'")))?,
        };
        let write_path = match uri.path_and_query().map(|pq| pq.as_str()) {
            None | Some("") | Some("/") => default_write_path.to_string(),
            Some(path) => path.to_string(),
        };
        let authority = match port_text {
            Some(text) if !text.is_empty() => format!("{host}:{port}"),
            _ => host.to_string(),
        };
        Ok(Self {
            host: host.to_string(),
            port,
            authority,
            write_path,
        })
    }

    pub fn write_url(&self) -> String {
        format!("http://{}{}", self.authority, self.write_path)
    }

    /// Resolves the host once; the first address wins.
    pub async fn resolve(&self) -> Result<SocketAddr> {
        let host_port = format!("{}:{}", self.host, self.port);
        let mut addrs = tokio::net::lookup_host(&host_port)
            .await
            .with_context(|| format!("cannot resolve '{host_port}'"))?;
        match addrs.next() {
            Some(addr) => Ok(addr),
            None => bail!("'{host_port}' resolved to no address"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_write_url_is_kept() {
        let target = Target::parse("http://127.0.0.1:8080/metrics", "/metrics").expect("valid");
        assert_eq!(target.host, "127.0.0.1");
        assert_eq!(target.port, 8080);
        assert_eq!(target.authority, "127.0.0.1:8080");
        assert_eq!(target.write_path, "/metrics");
        assert_eq!(target.write_url(), "http://127.0.0.1:8080/metrics");
    }

    #[test]
    fn base_url_gets_metrics_path() {
        for raw in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "127.0.0.1:8080",
        ] {
            let target = Target::parse(raw, "/metrics").expect(raw);
            assert_eq!(target.write_path, "/metrics", "{raw}");
            assert_eq!(target.port, 8080, "{raw}");
        }
    }

    #[test]
    fn default_path_is_the_callers() {
        let target = Target::parse("http://127.0.0.1:8080", "/api/v1/write").expect("valid");
        assert_eq!(target.write_path, "/api/v1/write");
        let target =
            Target::parse("http://127.0.0.1:8080/metrics", "/api/v1/write").expect("valid");
        assert_eq!(target.write_path, "/metrics");
    }

    #[test]
    fn other_paths_and_queries_are_kept() {
        let target =
            Target::parse("http://localhost:9000/v2/write?db=x", "/metrics").expect("valid");
        assert_eq!(target.write_path, "/v2/write?db=x");
        assert_eq!(target.host, "localhost");
    }

    #[test]
    fn default_port_is_80_and_host_header_has_no_port() {
        let target = Target::parse("http://example.test", "/metrics").expect("valid");
        assert_eq!(target.port, 80);
        assert_eq!(target.authority, "example.test");
    }

    #[test]
    fn ipv6_keeps_brackets() {
        let target = Target::parse("http://[::1]:8080/metrics", "/metrics").expect("valid");
        assert_eq!(target.host, "[::1]");
        assert_eq!(target.authority, "[::1]:8080");
    }

    #[test]
    fn bad_urls_are_rejected_with_the_value_named() {
        for raw in [
            "",
            "not a url",
            "/metrics",
            "https://127.0.0.1:8080/metrics",
            "ftp://127.0.0.1/metrics",
            "http://127.0.0.1:99999/metrics",
        ] {
            let error = Target::parse(raw, "/metrics").expect_err(raw).to_string();
            assert!(error.contains(&format!("'{raw}'")), "{raw}: {error}");
        }
    }

    #[tokio::test]
    async fn resolves_literal_addresses() {
        let target = Target::parse("http://127.0.0.1:8080", "/metrics").expect("valid");
        let addr = target.resolve().await.expect("resolves");
        assert_eq!(addr, "127.0.0.1:8080".parse().expect("addr"));
    }
}
