//! The admin API: the routing config (read, validate, replace live) and forced agent state.
//!
//! A config change is parsed and validated here (fast 422 with every problem), then applied
//! atomically on the engine task through the same `Reloader` as SIGHUP and the file watch: either
//! it is in force entirely, or the old config stays and every problem is returned.

use crate::daemon::decision_log::{Cause, CausedDecisions};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::daemon::core::{Input, Outcome};
use crate::daemon::reload::ReloadError;
use crate::daemon::subscribers::SubscriberChanges;
use crate::engine::RequestedState;

use super::error::ApiError;
use super::read::AgentJson;
use super::{read_body, read_json_object, require_content_type, AppState};

/// Content types accepted for a TOML body.
const TOML_TYPES: &[&str] = &["application/toml", "text/plain", "text/x-toml"];

/// `GET /v1/config`: the TOML text in force.
pub async fn get_config(
    State(app): State<AppState>,
    _: super::read::NoQuery,
) -> Result<Response, ApiError> {
    let source = app
        .engine
        .read_core_admin(|v| v.core.config().source.clone())
        .await?;
    let etag = crate::daemon::reload::config_etag(&source);
    let mut response = source.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/toml"),
    );
    insert_etag(&mut response, &etag);
    Ok(response)
}

/// `ETag: "<sha-256 of the config text>"` (hex digits and quotes: always a valid header value).
fn insert_etag(response: &mut Response, etag: &str) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

/// The request's `If-Match`, its values joined as one list (`None`: no precondition). A value
/// that is not visible ASCII cannot name any tag: 400.
fn if_match(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = Vec::new();
    for value in headers.get_all(header::IF_MATCH) {
        let text = value.to_str().map_err(|_| {
            ApiError::bad_request(
                "invalid_header",
                "If-Match is not visible ASCII: give the ETag of GET /v1/config, quotes \
                 included, or *",
            )
        })?;
        values.push(text.to_string());
    }
    if values.is_empty() {
        return Ok(None);
    }
    let joined = values.join(",");
    // A tag that can never match (weak, unquoted, empty) is the request's mistake, not a
    // change someone else made: say so, instead of a 412 telling to re-read and merge.
    for tag in joined.split(',').map(str::trim) {
        let strong = tag.len() >= 2
            && tag.starts_with('"')
            && tag.ends_with('"')
            && !tag[1..tag.len() - 1].contains('"');
        if tag != "*" && !strong {
            let why = if tag.starts_with("W/") {
                "a weak tag never matches (If-Match compares strongly)"
            } else {
                "not an entity-tag"
            };
            return Err(ApiError::bad_request(
                "invalid_header",
                format!(
                    "If-Match {}: {why}; send the ETag of GET /v1/config as it is, quotes \
                     included (If-Match: \"5e0c…\"), or *",
                    crate::engine::event::Named(tag)
                ),
            ));
        }
    }
    Ok(Some(joined))
}

async fn toml_body(app: &AppState, headers: &HeaderMap, body: Body) -> Result<String, ApiError> {
    require_content_type(headers, TOML_TYPES)?;
    let bytes = read_body(body, headers, app.body_limit).await?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        ApiError::bad_request("invalid_utf8", format!("the config is not UTF-8: {e}"))
    })?;
    // Every section has defaults, so an empty file is a valid config with no queues: applied,
    // it would remove every queue. A body lost on the way is far likelier than that intent.
    // A byte order mark alone is blank too (TOML would accept it as an empty document).
    if crate::config::is_blank(&text) {
        return Err(ApiError::unprocessable(
            "empty_config",
            "the config body is empty (a config with no [[queue]] would remove every queue); \
             send the whole TOML file",
        ));
    }
    Ok(text)
}

#[derive(Debug, Serialize)]
pub struct ValidJson {
    pub valid: bool,
    pub queues: Vec<String>,
    pub agents: usize,
    pub rules: usize,
    /// Settings that would have no effect (always present).
    pub notes: Vec<String>,
}

/// `POST /v1/config/validate`: everything `PUT /v1/config` would refuse the body for (its
/// problems, secrets it cannot read, live interactions it would strand); nothing changes.
pub async fn validate_config(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ValidJson>, ApiError> {
    let text = toml_body(&app, &headers, body).await?;
    let loaded = app
        .reloader
        .check_source(&text, "request body")
        .await
        .map_err(check_error)?;
    Ok(Json(ValidJson::of(&loaded)))
}

impl ValidJson {
    /// The answer for a config that passed every check.
    fn of(loaded: &crate::config::LoadedConfig) -> ValidJson {
        ValidJson {
            valid: true,
            queues: loaded.routing.queues.iter().map(|q| q.id.clone()).collect(),
            agents: loaded.routing.agents.len(),
            rules: loaded.routing.rules.len(),
            notes: crate::config::summary::notes(&loaded.routing),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PreviewJson {
    /// What `validate` answers (a config `PUT` would refuse gets the same error).
    #[serde(flatten)]
    pub checked: ValidJson,
    /// Always false: nothing was changed.
    pub applied: bool,
    /// Daemon settings that differ from the running ones but take a restart (always present).
    pub restart_needed: Vec<String>,
    /// What the change would do to the live state if applied now.
    pub preview: crate::daemon::preview::PreviewReport,
    /// Webhook subscribers a `PUT` of the body would start, stop or start again with new
    /// settings, as its answer would list them (always present).
    pub subscribers: crate::daemon::subscribers::SubscriberChanges,
}

/// `POST /v1/config/preview`: what `validate` checks, and what a `PUT` of the body would do
/// now, worked out on a copy of the engine: the decisions it would make, the live interactions
/// it would move, the agents whose tiers change. Nothing changes.
pub async fn preview_config(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PreviewJson>, ApiError> {
    let text = toml_body(&app, &headers, body).await?;
    let (loaded, restart_needed, preview, subscribers) = app
        .reloader
        .preview_source(&text, "request body")
        .await
        .map_err(check_error)?;
    Ok(Json(PreviewJson {
        checked: ValidJson::of(&loaded),
        applied: false,
        restart_needed,
        preview,
        subscribers,
    }))
}

#[derive(Debug, Serialize)]
pub struct AppliedJson {
    pub applied: bool,
    /// Decisions the change caused at once (e.g. offers to a newly added L2 agent), with their
    /// cause as the feed shows them.
    pub decisions: CausedDecisions,
    /// Daemon settings that changed but need a restart to take effect (always present).
    pub restart_needed: Vec<String>,
    /// Settings of the applied config that have no effect (always present).
    pub notes: Vec<String>,
    /// Webhook subscribers the change started, stopped or started again with new settings
    /// (always present).
    pub subscribers: SubscriberChanges,
}

/// `PUT /v1/config`: replace the routing config live.
pub async fn put_config(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let precondition = if_match(&headers)?;
    let text = toml_body(&app, &headers, body).await?;
    let etag = crate::daemon::reload::config_etag(&text);
    match app
        .reloader
        .apply_source_if(text, crate::daemon::reload::PUT_ORIGIN, precondition)
        .await
    {
        Ok(report) => {
            let mut response = Json(AppliedJson {
                applied: true,
                decisions: CausedDecisions::new(
                    report.decisions,
                    Cause::ConfigChange {
                        origin: crate::daemon::reload::PUT_ORIGIN,
                    },
                ),
                restart_needed: report.restart_needed,
                notes: report.notes,
                subscribers: report.subscribers,
            })
            .into_response();
            insert_etag(&mut response, &etag);
            Ok(response)
        }
        Err(e) => Err(reload_error(e)),
    }
}

/// The answer to a config change (or a check of one) that would be refused.
fn reload_error(e: ReloadError) -> ApiError {
    match e {
        ReloadError::Invalid(problems) => ApiError::invalid_config(problems),
        ReloadError::Engine(e) => e.into(),
        e @ ReloadError::Read { .. } => ApiError::unprocessable("invalid_config", e.to_string()),
        e @ ReloadError::Secret(_) => ApiError::unprocessable("secret_unavailable", e.to_string()),
        e @ ReloadError::PreviewBusy => ApiError::unavailable("preview_busy", e.to_string()),
        ReloadError::Preview(message) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "preview_failed",
            format!("{message}; nothing was changed"),
        ),
        e @ ReloadError::Stale { .. } => ApiError::new(
            axum::http::StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            format!("{e}; nothing was changed"),
        ),
    }
}

/// The answer to a `validate` that a `PUT` would refuse: as `reload_error`, without saying
/// what stays in force (a check changes nothing).
fn check_error(e: ReloadError) -> ApiError {
    match e {
        ReloadError::Secret(secret) => {
            ApiError::unprocessable("secret_unavailable", secret.to_string())
        }
        other => reload_error(other),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRequest {
    pub state: RequestedState,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StateJson {
    pub agent: Option<AgentJson>,
    pub decisions: CausedDecisions,
}

/// `PUT /v1/agents/{id}/state`: force an agent's status (`{"state":"not_ready","reason":"…"}`).
pub async fn force_agent_state(
    State(app): State<AppState>,
    Path(agent): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<StateJson>, ApiError> {
    let request: StateRequest = read_json_object(&app, &headers, body).await?;
    let mut outcomes = app
        .engine
        .apply_admin(vec![Input::AgentState {
            agent: agent.clone(),
            state: request.state,
            reason: request.reason,
        }])
        .await?;
    let decisions = match outcomes.pop() {
        Some(Outcome::Applied(decisions)) => {
            CausedDecisions::new(decisions, Cause::AgentState { agent: &agent })
        }
        Some(Outcome::Rejected(e)) => return Err(ApiError::from_engine(&e, None)),
        _ => {
            return Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "unexpected outcome for a forced agent state",
            ))
        }
    };
    // Waiting for room like the change itself: a full queue must not turn an applied change
    // into a "nothing was applied" 503.
    let view = app
        .engine
        .read_core_admin(move |v| v.core.engine().agent(&agent))
        .await?;
    Ok(Json(StateJson {
        agent: view.map(AgentJson::from),
        decisions,
    }))
}
