//! `POST /hooks/{id}`: webhook deliveries. A delivery is checked (trigger enabled,
//! body within the cap, signature when the trigger has a secret), queued through
//! the outbox in one transaction with its dedupe claim, and answered 202
//! `{"invocation_id"}` before the script runs.
//!
//! Signatures: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64> …` over `id.timestamp.body`, timestamps within
//! five minutes) or GitHub (`X-Hub-Signature-256: sha256=<hex>` over the body),
//! HMAC-SHA256 compared in constant time. A secret `whsec_<base64>` is the decoded
//! key; any other secret is its UTF-8 bytes. A delivery repeated with the same
//! `webhook-id` (or `X-GitHub-Delivery`) is not queued twice: it answers the first
//! delivery's invocation id.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use picloud_actors::dispatcher::queued_body;
use picloud_actors::keys::webhook_purpose;
use picloud_events::Metadata;
use picloud_events::domain::{InvocationRequest, QueuedRequest, TriggerKind, stream};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::{RequestId, read_body};
use crate::state::ApiState;

/// How far a Standard Webhooks timestamp may be from now, in seconds.
pub const TIMESTAMP_TOLERANCE: i64 = 300;

/// Headers never written to the log with a queued delivery.
const DROPPED_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

pub async fn deliver(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    answer(&state, accept(&state, &id, req).await)
}

/// The answer of a `/hooks/…` handler, counted in the metrics.
pub(crate) fn answer(state: &ApiState, result: Result<Response, ApiError>) -> Response {
    let response = result.unwrap_or_else(IntoResponse::into_response);
    state
        .runtime
        .metrics
        .http("hooks", response.status().as_u16());
    response
}

async fn accept(state: &ApiState, id: &str, req: Request) -> Result<Response, ApiError> {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let entry = state
        .runtime
        .catalog
        .app_of_trigger(id)
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let trigger = entry
        .app
        .triggers
        .get(id)
        .filter(|t| t.enabled)
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let TriggerKind::Webhook {
        secret,
        sealed_secret,
    } = &trigger.kind
    else {
        return Err(ApiError::not_found("webhook"));
    };
    // The signing secret: sealed under the master key (or, from a log written
    // before secrets were sealed, as it was given).
    let secret = match (sealed_secret, secret) {
        (Some(sealed), _) => Some(
            state
                .runtime
                .config
                .master_key
                .open_text(&webhook_purpose(&entry.app.id, &trigger.id), sealed)
                .map_err(|_| {
                    ApiError::internal("webhook secret", "the sealed secret does not open")
                })?,
        ),
        (None, legacy) => legacy.clone(),
    };
    let headers = req.headers().clone();
    let method = req.method().as_str().to_owned();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    let body = read_body(req.into_body(), state.config.body_limit).await?;
    if let Some(secret) = &secret {
        verify(secret, &headers, &body, Utc::now().timestamp())
            .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", why))?;
    }

    let delivery = header(&headers, "webhook-id").or_else(|| header(&headers, "x-github-delivery"));
    let invocation_id = uuid::Uuid::now_v7().to_string();
    let kept: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !DROPPED_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let header_map: Map<String, Value> = kept
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let (text, base64) = queued_body(&body);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let event = json!({
        "kind": "webhook",
        "trigger_id": trigger.id,
        "delivery_id": delivery,
        "headers": header_map,
        "body": text,
        "json": parsed,
    });
    let request = InvocationRequest {
        id: invocation_id.clone(),
        app_id: entry.app.id.clone(),
        script_id: trigger.script_id.clone(),
        trigger: "webhook".into(),
        trigger_id: Some(trigger.id.clone()),
        event,
        request: Some(QueuedRequest {
            method,
            path: format!("/hooks/{id}"),
            query,
            headers: kept,
            body: text,
            body_base64: base64,
        }),
        max_attempts: trigger.max_attempts,
        idempotency_key: format!(
            "webhook:{}:{}",
            trigger.id,
            delivery.as_deref().unwrap_or(&invocation_id)
        ),
        requested_at: Utc::now(),
        depth: 0,
        lease: None,
    };
    let metadata = Metadata {
        actor: Some("webhook".into()),
        request_id: Some(request_id.clone()),
        correlation_id: Some(request_id),
        node: Some(state.runtime.config.node_id.clone()),
        ..Metadata::default()
    };
    let (invocation_id, duplicate) = match &delivery {
        Some(delivery) => {
            let key = hex::encode(Sha256::digest(delivery.as_bytes()));
            let dedupe = stream::webhook_delivery(&trigger.id, &key[..32]);
            let queued = state
                .runtime
                .enqueue_once(request, &metadata, &dedupe)
                .await?;
            (queued.invocation_id, queued.duplicate)
        }
        None => {
            state
                .runtime
                .enqueue(request, &metadata, Vec::new())
                .await?;
            (invocation_id, false)
        }
    };
    let mut answer = json!({ "invocation_id": invocation_id });
    if duplicate {
        answer["duplicate"] = json!(true);
    }
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The HMAC key of a secret: `whsec_<base64>` decodes, anything else is its bytes.
pub fn key_of(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn mac(key: &[u8]) -> Result<Hmac<Sha256>, String> {
    // HMAC takes keys of any length: this does not fail in practice.
    <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| "unusable webhook secret".to_owned())
}

/// Check a hex HMAC-SHA256 of `body` under `key` (GitHub's `sha256=` value without
/// its prefix, Gitea's `X-Gitea-Signature`) in constant time; `header` names the
/// header in the error.
pub fn verify_hex(key: &[u8], body: &[u8], hex_sig: &str, header: &str) -> Result<(), String> {
    let Ok(expected) = hex::decode(hex_sig) else {
        return Err(format!("{header} is not hex"));
    };
    let mut m = mac(key)?;
    m.update(body);
    m.verify_slice(&expected)
        .map_err(|_| "signature mismatch".to_owned())
}

/// Check a git host's push signature: Gitea's `X-Gitea-Signature: <hex>` or
/// GitHub's `X-Hub-Signature-256: sha256=<hex>`, both HMAC-SHA256 of the body.
pub fn verify_git_push(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    if let Some(signature) = header(headers, "x-gitea-signature") {
        return verify_hex(&key_of(secret), body, &signature, "X-Gitea-Signature");
    }
    if let Some(signature) = header(headers, "x-hub-signature-256") {
        let Some(hex_sig) = signature.strip_prefix("sha256=") else {
            return Err("X-Hub-Signature-256 must be sha256=<hex>".into());
        };
        return verify_hex(&key_of(secret), body, hex_sig, "X-Hub-Signature-256");
    }
    Err("missing signature: send X-Hub-Signature-256 (GitHub) or X-Gitea-Signature (Gitea)".into())
}

/// Check a delivery's signature (either scheme); `Err` says what is wrong.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), String> {
    let key = key_of(secret);
    if let Some(signature) = header(headers, "x-hub-signature-256") {
        let Some(hex_sig) = signature.strip_prefix("sha256=") else {
            return Err("X-Hub-Signature-256 must be sha256=<hex>".into());
        };
        return verify_hex(&key, body, hex_sig, "X-Hub-Signature-256");
    }
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header(headers, "webhook-id"),
        header(headers, "webhook-timestamp"),
        header(headers, "webhook-signature"),
    ) else {
        return Err(
            "missing signature: send webhook-id, webhook-timestamp and webhook-signature, or X-Hub-Signature-256"
                .into(),
        );
    };
    let Ok(ts) = timestamp.parse::<i64>() else {
        return Err("webhook-timestamp must be seconds since the epoch".into());
    };
    if (now - ts).abs() > TIMESTAMP_TOLERANCE {
        return Err(format!(
            "webhook-timestamp is more than {TIMESTAMP_TOLERANCE} s from now"
        ));
    }
    for candidate in signatures.split_whitespace() {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        let mut m = mac(&key)?;
        m.update(id.as_bytes());
        m.update(b".");
        m.update(timestamp.as_bytes());
        m.update(b".");
        m.update(body);
        if m.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err("signature mismatch".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_standard(key: &[u8], id: &str, ts: i64, body: &[u8]) -> String {
        let mut m = mac(key).expect("mac");
        m.update(format!("{id}.{ts}.").as_bytes());
        m.update(body);
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn standard_webhooks_signatures_verify_with_a_whsec_key() {
        let key = b"0123456789abcdef0123456789abcdef";
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let body = br#"{"type":"ping"}"#;
        let sig = sign_standard(key, "msg_1", 1_700_000_000, body);
        let h = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", &format!("v1,bm90IGl0 {sig}")),
        ]);
        assert_eq!(verify(&secret, &h, body, 1_700_000_010), Ok(()));
        // Wrong body, wrong id, too old, too new.
        assert!(verify(&secret, &h, b"{}", 1_700_000_010).is_err());
        let other = headers(&[
            ("webhook-id", "msg_2"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", &sig),
        ]);
        assert!(verify(&secret, &other, body, 1_700_000_010).is_err());
        assert!(verify(&secret, &h, body, 1_700_000_000 + 301).is_err());
        assert!(verify(&secret, &h, body, 1_700_000_000 - 301).is_err());
        // The same key as plain text bytes is a different key.
        assert!(verify("not the key", &h, body, 1_700_000_010).is_err());
    }

    #[test]
    fn github_signatures_verify_with_the_secret_bytes() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let mut m = mac(b"It's a Secret to Everybody").expect("mac");
        m.update(body);
        let sig = format!("sha256={}", hex::encode(m.finalize().into_bytes()));
        let h = headers(&[("x-hub-signature-256", &sig)]);
        assert_eq!(verify("It's a Secret to Everybody", &h, body, 0), Ok(()));
        assert!(verify("It's a Secret to Everybody", &h, b"tampered", 0).is_err());
        assert!(verify("wrong", &h, body, 0).is_err());
        let bad = headers(&[("x-hub-signature-256", "sha1=abc")]);
        assert!(verify("x", &bad, body, 0).is_err());
        assert!(verify("x", &HeaderMap::new(), body, 0).is_err(), "unsigned");
    }

    #[test]
    fn git_pushes_verify_with_github_or_gitea_signatures() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut m = mac(b"push").expect("mac");
        m.update(body);
        let hex_sig = hex::encode(m.finalize().into_bytes());
        let github = headers(&[("x-hub-signature-256", &format!("sha256={hex_sig}"))]);
        let gitea = headers(&[("x-gitea-signature", &hex_sig)]);
        assert_eq!(verify_git_push("push", &github, body), Ok(()));
        assert_eq!(verify_git_push("push", &gitea, body), Ok(()));
        assert!(verify_git_push("other", &gitea, body).is_err());
        assert!(verify_git_push("push", &gitea, b"tampered").is_err());
        assert!(verify_git_push("push", &headers(&[("x-gitea-signature", "zz")]), body).is_err());
        assert!(verify_git_push("push", &HeaderMap::new(), body).is_err());
    }

    #[test]
    fn github_documented_example_verifies() {
        // The example from GitHub's "Validating webhook deliveries" page.
        let h = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert_eq!(
            verify("It's a Secret to Everybody", &h, b"Hello, World!", 0),
            Ok(())
        );
    }
}
