//! Every write protocol end to end through the async server: body → queue →
//! storage → `GET /query` returns it; and each protocol's bad input.

mod support;

use std::io::Write;
use std::time::Duration;

use common::{Labels, Metric};
use craft1_ingestion::ServerConfig;
use craft1_ingestion::decode::remote_write::encode_remote_write;
use support::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn query(running: &Running, name: &str) -> serde_json::Value {
    let reply = get(running.addr, &format!("/query?name={name}"));
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()
}

#[test]
fn every_protocol_reaches_storage_and_query() {
    let running = Running::start(Step::Async, ServerConfig::default());
    let addr = running.addr;

    // The seed's object still answers exactly as phase0 did.
    let reply = post(addr, "/metrics", r#"{"name":"seed_object","value":85}"#);
    assert_eq!(
        (reply.status, reply.json()),
        (202, serde_json::json!({"status": "accepted"}))
    );

    // A JSON array.
    let reply = post(
        addr,
        "/metrics",
        r#"[{"name":"json_batch","value":1,"timestamp":1700000000000,"labels":{"host":"a"}},
            {"name":"json_batch","value":2,"timestamp":1700000001000,"labels":{"host":"a"}},
            {"name":"json_batch","value":3,"timestamp":1700000000000,"labels":{"host":"b"}}]"#,
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "accepted", "count": 3})
    );

    // NDJSON, with a blank line.
    let ndjson = b"{\"name\":\"ndjson_batch\",\"value\":1,\"timestamp\":1700000000000}\n\n{\"name\":\"ndjson_batch\",\"value\":2,\"timestamp\":1700000000001}\n";
    let reply = request(
        addr,
        "POST",
        "/metrics",
        &[("Content-Type", "application/x-ndjson")],
        ndjson,
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.json()["count"], 2);

    // InfluxDB 1.x line protocol, ms precision; Telegraf's `value` convention.
    let lp = b"weather,station=oslo temperature=21.5,humidity=40i 1700000000000\ncpu_load,host=a value=3 1700000000001\n";
    let reply = request(addr, "POST", "/write?db=telegraf&precision=ms", &[], lp);
    assert_eq!(reply.status, 204, "{reply:?}");
    // InfluxDB 2.x path, seconds precision.
    let reply = request(
        addr,
        "POST",
        "/api/v2/write?org=o&bucket=b&precision=s",
        &[],
        b"disk,host=a free=10 1700000002\n",
    );
    assert_eq!(reply.status, 204, "{reply:?}");

    // Prometheus remote_write.
    let series = [
        Metric::new("rw_metric", 1.5, 1_700_000_000_000)
            .with_labels(Labels::from_pairs([("job", "node")])),
        Metric::new("rw_metric", 2.5, 1_700_000_015_000)
            .with_labels(Labels::from_pairs([("job", "node")])),
    ];
    let reply = request(
        addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &encode_remote_write(&series),
    );
    assert_eq!(reply.status, 204, "{reply:?}");

    // A gzip-compressed JSON array.
    let body = gzip(br#"[{"name":"gzip_batch","value":7,"timestamp":1700000000000}]"#);
    let reply = request(
        addr,
        "POST",
        "/metrics",
        &[("Content-Encoding", "gzip")],
        &body,
    );
    assert_eq!(reply.status, 202, "{reply:?}");

    running.wait_stored("seed_object", 1);
    running.wait_stored("json_batch", 3);
    running.wait_stored("ndjson_batch", 2);
    running.wait_stored("weather_temperature", 1);
    running.wait_stored("weather_humidity", 1);
    running.wait_stored("cpu_load", 1);
    running.wait_stored("disk_free", 1);
    running.wait_stored("rw_metric", 2);
    running.wait_stored("gzip_batch", 1);

    let weather = query(&running, "weather_temperature");
    assert_eq!(weather[0]["value"], 21.5);
    assert_eq!(weather[0]["timestamp"], 1_700_000_000_000i64);
    assert_eq!(weather[0]["labels"]["station"], "oslo");
    assert_eq!(query(&running, "weather_humidity")[0]["value"], 40.0);
    assert_eq!(
        query(&running, "disk_free")[0]["timestamp"],
        1_700_000_002_000i64,
        "s → ms"
    );
    let rw = query(&running, "rw_metric");
    assert_eq!(rw[1]["value"], 2.5);
    assert_eq!(rw[1]["labels"]["job"], "node");
    let batch = query(&running, "json_batch");
    assert_eq!(batch.as_array().map(Vec::len), Some(3));
    assert_eq!(query(&running, "gzip_batch")[0]["value"], 7.0);
}

#[test]
fn bad_input_per_protocol() {
    let config = ServerConfig {
        max_body_bytes: 64 * 1024,
        max_decompressed_bytes: 256 * 1024,
        max_labels_per_series: 4,
        max_samples_per_request: 5,
        ..Default::default()
    };
    let running = Running::start(Step::Async, config);
    let addr = running.addr;

    // JSON: a bad item refuses the whole batch, naming its index.
    let reply = post(
        addr,
        "/metrics",
        r#"[{"name":"ok","value":1},{"name":"9bad","value":1}]"#,
    );
    assert_error(&reply, 400, "item 1");
    assert_error(&post(addr, "/metrics", "[]"), 400, "empty batch");
    assert_error(&post(addr, "/metrics", "[{"), 400, "item 0");
    let five_labels =
        r#"{"name":"x","value":1,"labels":{"a":"1","b":"2","c":"3","d":"4","e":"5"}}"#;
    assert_error(
        &post(addr, "/metrics", five_labels),
        400,
        "5 labels, the limit is 4",
    );
    let reply = request(
        addr,
        "POST",
        "/metrics",
        &[("Content-Type", "application/x-ndjson")],
        b"{\"name\":\"a\",\"value\":1}\nnot json\n",
    );
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        reply.error().contains("2") || reply.error().contains("item 1"),
        "{}",
        reply.error()
    );

    // Line protocol: the line is named.
    let reply = request(
        addr,
        "POST",
        "/write?precision=ms",
        &[],
        b"ok value=1 1\nbroken line here\n",
    );
    assert_error(&reply, 400, "line 2");
    assert_error(
        &request(
            addr,
            "POST",
            "/write?precision=fortnights",
            &[],
            b"a value=1",
        ),
        400,
        "fortnights",
    );

    // remote_write: bad snappy, bad protobuf, wrong content type.
    let rw_headers = [
        ("Content-Encoding", "snappy"),
        ("Content-Type", "application/x-protobuf"),
    ];
    assert_error(
        &request(
            addr,
            "POST",
            "/api/v1/write",
            &rw_headers,
            b"not snappy at all",
        ),
        400,
        "snappy",
    );
    let garbage = snap::raw::Encoder::new()
        .compress_vec(&[0xff; 64])
        .expect("snappy");
    assert_error(
        &request(addr, "POST", "/api/v1/write", &rw_headers, &garbage),
        400,
        "protobuf",
    );
    assert_error(
        &request(
            addr,
            "POST",
            "/api/v1/write",
            &[("Content-Type", "application/json")],
            b"{}",
        ),
        415,
        "application/x-protobuf",
    );

    // Encodings and sizes.
    assert_error(
        &request(
            addr,
            "POST",
            "/metrics",
            &[("Content-Encoding", "br")],
            b"{}",
        ),
        415,
        "Content-Encoding",
    );
    assert_error(
        &request(
            addr,
            "POST",
            "/metrics",
            &[("Content-Encoding", "gzip")],
            b"not gzip",
        ),
        400,
        "gzip",
    );
    let big = format!(
        r#"{{"name":"big","value":1,"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    assert_error(&post(addr, "/metrics", &big), 413, "exceeds the limit");
    // A gzip bomb: 1 MiB of zeros compresses to ~1 KiB but inflates past the limit.
    let bomb = gzip(&vec![b' '; 1024 * 1024]);
    assert_error(
        &request(
            addr,
            "POST",
            "/metrics",
            &[("Content-Encoding", "gzip")],
            &bomb,
        ),
        413,
        "exceeds",
    );
    assert_error(
        &request(addr, "GET", "/write", &[], b""),
        405,
        "allowed: POST",
    );

    // Six samples where five are allowed, in every format: refused whole.
    let six_json = format!("[{}]", [r#"{"name":"many","value":1}"#; 6].join(","));
    assert_error(
        &post(addr, "/metrics", &six_json),
        413,
        "more than 5 samples",
    );
    let six_ndjson = "{\"name\":\"many\",\"value\":1}\n".repeat(6);
    let ndjson = [("Content-Type", "application/x-ndjson")];
    assert_error(
        &request(addr, "POST", "/metrics", &ndjson, six_ndjson.as_bytes()),
        413,
        "more than 5 samples",
    );
    let six_lines = "many value=1\n".repeat(6);
    assert_error(
        &request(addr, "POST", "/write", &[], six_lines.as_bytes()),
        413,
        "more than 5 samples",
    );
    let six: Vec<Metric> = (0..6)
        .map(|i| Metric::new("many", 1.0, 1_700_000_000_000 + i))
        .collect();
    let reply = request(
        addr,
        "POST",
        "/api/v1/write",
        &rw_headers,
        &encode_remote_write(&six),
    );
    assert_error(&reply, 413, "more than 5 samples");
    let reply = request(
        addr,
        "POST",
        "/api/v1/write",
        &rw_headers,
        &encode_remote_write(&six[..5]),
    );
    assert_eq!(reply.status, 204, "five fit: {reply:?}");

    // Nothing of any refused request was stored; the server is healthy.
    assert_eq!(get(addr, "/health").json()["status"], "healthy");
    running.wait_stored("many", 5);
    for name in ["ok", "x", "a", "big"] {
        assert_eq!(
            query(&running, name),
            serde_json::json!([]),
            "{name} was refused whole"
        );
    }
}

#[test]
fn backpressure_rate_limits_and_auth() {
    // A queue of 3: a batch of 4 can never fit and is refused whole.
    let running = Running::start_with_capacity(Step::Async, ServerConfig::default(), 3);
    let four = r#"[{"name":"q","value":1},{"name":"q","value":2},{"name":"q","value":3},{"name":"q","value":4}]"#;
    let reply = post(running.addr, "/metrics", four);
    assert_error(&reply, 503, "queue is full");
    assert_eq!(reply.header("retry-after").as_deref(), Some("1"));
    drop(running);

    let config = ServerConfig {
        rate_limit_per_client: Some(0.5),
        rate_limit_burst: 2.0,
        ..Default::default()
    };
    let running = Running::start(Step::Async, config);
    let body = r#"{"name":"limited","value":1}"#;
    assert_eq!(post(running.addr, "/metrics", body).status, 202);
    assert_eq!(post(running.addr, "/metrics", body).status, 202);
    let reply = post(running.addr, "/metrics", body);
    assert_error(&reply, 429, "rate limit exceeded");
    let retry: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry), "retry after {retry}");
    drop(running);

    let config = ServerConfig {
        auth_token: Some("s3cret".into()),
        ..Default::default()
    };
    let running = Running::start(Step::Async, config);
    let reply = post(running.addr, "/metrics", body);
    assert_error(&reply, 401, "bearer token");
    assert!(reply.header("www-authenticate").is_some());
    assert_error(&get(running.addr, "/query?name=x"), 401, "bearer token");
    let reply = request(
        running.addr,
        "POST",
        "/metrics",
        &[("Authorization", "Bearer s3cret")],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(
        get(running.addr, "/health").status,
        200,
        "health stays open for load balancers"
    );
}

#[test]
fn self_metrics_count_requests_and_samples() {
    let running = Running::start(Step::Async, ServerConfig::default());
    post(
        running.addr,
        "/metrics",
        r#"[{"name":"m","value":1},{"name":"m","value":2,"timestamp":5}]"#,
    );
    post(running.addr, "/metrics", "{bad");
    let reply = get(running.addr, "/metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = reply.body;
    assert!(
        text.contains("ingest_requests_total{route=\"/metrics\",status=\"202\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ingest_requests_total{route=\"/metrics\",status=\"400\"} 1"),
        "{text}"
    );
    assert!(text.contains("ingest_samples_accepted_total 2"), "{text}");
    assert!(
        text.contains("ingest_requests_rejected_total{reason=\"invalid\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ingest_request_duration_seconds_count"),
        "{text}"
    );
    assert!(text.contains("ingest_queue_depth"), "{text}");
    let _ = Duration::ZERO;
}
