//! One JetStream publish, retried with the same headers (so the same `Nats-Msg-Id`) until acknowledged, refused,
//! or out of time; and the JetStream error codes the rest of the crate tells apart.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;
use tokio::time::Instant;

/// How long an append keeps retrying before it reports the log unavailable.
pub(crate) const APPEND_DEADLINE: Duration = Duration::from_secs(10);

/// JetStream's "wrong last sequence" refusals: 10071, and 10164 (the constant form a clustered stream's leader
/// answers before proposing, which the client does not map to `WrongLastSequence`).
const WRONG_LAST_SEQUENCE: [ErrorCode; 2] = [
    ErrorCode::STREAM_WRONG_LAST_SEQUENCE,
    ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT,
];

/// Refusals that no retry can change: the message is too large, or the subject belongs to another stream.
const PERMANENT: [ErrorCode; 2] = [
    ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM,
    ErrorCode(10060), // expected stream does not match
];

/// Why a publish did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublishFailure {
    /// Refused: the subject's last sequence is not the one the publish expected.
    WrongLast,
    /// Refused for good (too large, wrong stream).
    Invalid(String),
    /// Not acknowledged before the deadline; it may or may not have landed.
    Unavailable(String),
}

/// Publishes until acknowledged (a duplicate's ack names the original sequence), refused, or `deadline`.
pub(crate) async fn publish_until(
    js: &jetstream::Context,
    subject: &str,
    headers: &HeaderMap,
    payload: &Bytes,
    deadline: Instant,
) -> Result<PublishAck, PublishFailure> {
    let mut backoff = Duration::from_millis(50);
    let mut last_error = String::from("no acknowledgment");
    loop {
        let attempt = async {
            js.send_publish(
                subject.to_string(),
                PublishMessage::build()
                    .payload(payload.clone())
                    .headers(headers.clone()),
            )
            .await?
            .await
        };
        match tokio::time::timeout_at(deadline, attempt).await {
            Err(_elapsed) => break,
            Ok(Ok(ack)) => return Ok(ack),
            Ok(Err(err)) => {
                let code = jetstream_code(&err);
                if err.kind() == PublishErrorKind::WrongLastSequence
                    || code.is_some_and(|c| WRONG_LAST_SEQUENCE.contains(&c))
                {
                    return Err(PublishFailure::WrongLast);
                }
                if err.kind() == PublishErrorKind::MaxPayloadExceeded
                    || code.is_some_and(|c| PERMANENT.contains(&c))
                {
                    return Err(PublishFailure::Invalid(err.to_string()));
                }
                tracing::debug!(subject, error = %err, "publish failed, retrying");
                last_error = err.to_string();
            }
        }
        if Instant::now() + backoff >= deadline {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
    Err(PublishFailure::Unavailable(format!(
        "no acknowledgment from the log in time ({last_error})"
    )))
}

/// The JetStream error code somewhere in `err`'s source chain.
pub(crate) fn jetstream_code(err: &(dyn std::error::Error + 'static)) -> Option<ErrorCode> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(js) = e.downcast_ref::<jetstream::Error>() {
            return Some(js.error_code());
        }
        current = e.source();
    }
    None
}

/// Whether `err` is a "wrong last sequence" refusal (a compare-and-set lost), in any of its forms.
pub(crate) fn is_wrong_last(err: &(dyn std::error::Error + 'static), kind_says_so: bool) -> bool {
    kind_says_so || jetstream_code(err).is_some_and(|c| WRONG_LAST_SEQUENCE.contains(&c))
}
