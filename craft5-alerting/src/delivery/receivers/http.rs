//! The webhooks' HTTP client: one blocking `POST` of a JSON body with a
//! timeout, the answer sorted into delivered, retryable and permanent.
//!
//! Blocking on purpose: sends happen on the delivery worker's own thread,
//! one at a time, never on the ingest path, so an async client would buy
//! nothing but a runtime. `ureq` with rustls (webpki roots) speaks HTTPS
//! to Slack and PagerDuty; plain HTTP serves local test servers and
//! in-house endpoints. Redirects are not followed (a webhook that moved
//! should be reconfigured, not chased with a repeated POST). Docs chapter
//! 5, "Receivers".

use std::io::Read;
use std::time::Duration;

use super::DeliveryError;

/// How much of an error answer's body is kept for the history.
const ERROR_BODY_LIMIT: u64 = 512;

/// A JSON poster with a timeout.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

impl HttpClient {
    /// A client whose every request (connect, send, answer) ends within
    /// `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!(
                "systems-craft-alerting/",
                env!("CARGO_PKG_VERSION")
            ))
            .build();
        HttpClient {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// POSTs `body` as `application/json` with extra `headers`.
    ///
    /// # Errors
    /// [`DeliveryError::Retryable`] for a transport failure, a 5xx, a 408
    /// or a 429; [`DeliveryError::Permanent`] for any other status that is
    /// not 2xx.
    pub fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Result<(), DeliveryError> {
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let bytes = serde_json::to_vec(body)
            .map_err(|e| DeliveryError::Permanent(format!("cannot encode the body: {e}")))?;
        let mut response = request
            .send(&bytes[..])
            .map_err(|e| DeliveryError::Retryable(format!("POST {url}: {e}")))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        // The start of the answer says why; the rest is not worth waiting for.
        let mut start = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(ERROR_BODY_LIMIT)
            .read_to_end(&mut start);
        let text = String::from_utf8_lossy(&start);
        let message = format!("POST {url}: HTTP {status}: {}", text.trim());
        if status >= 500 || status == 408 || status == 429 {
            Err(DeliveryError::Retryable(message))
        } else {
            Err(DeliveryError::Permanent(message))
        }
    }
}
