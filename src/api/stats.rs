//! The KPI reports: `GET /v1/queues/{id}/stats?window=15m` and `GET /v1/agents/{id}/stats?since=…`.
//!
//! The numbers come from the metrics `Telemetry` the engine task owns (bounded per-minute
//! windows and per-agent ledgers, see `crate::metrics::stats`); the query runs on the engine task
//! through the usual oneshot read, at the engine's clock, so it sees every event answered before
//! it. The definitions of every KPI are in `docs/METRICS.md`. Parameters are checked here, before
//! the engine is asked: a bad `window` or `since` is a 422 that costs the engine nothing.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use crate::config::Millis;
use crate::engine::decision::rfc3339_ms;
use crate::metrics::stats::{parse_window, RETENTION_MS};
use crate::metrics::{AgentStats, QueueStats, StatsError};

use super::error::ApiError;
use super::AppState;

/// The queue window when `window` is absent.
pub const DEFAULT_WINDOW: &str = "15m";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueStatsQuery {
    /// `Ns`, `Nm` or `Nh`: whole minutes from 1 m to 24 h (default 15 m).
    window: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentStatsQuery {
    /// RFC 3339; absent: as far back as statistics reach (24 hours).
    since: Option<String>,
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::invalid_query(&e)
}

fn stats_error(e: StatsError) -> ApiError {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    ApiError::new(status, e.code(), e.to_string())
}

/// `GET /v1/queues/{id}/stats?window=15m`.
pub async fn queue_stats(
    State(app): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<QueueStatsQuery>, QueryRejection>,
) -> Result<Json<QueueStats>, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    let window = parse_window(q.window.as_deref().unwrap_or(DEFAULT_WINDOW));
    // An unknown queue is said first (404), whatever the window: it is the bigger mistake.
    app.engine
        .read(move |v| match window {
            Ok(window) => v.telemetry.queue_stats(&id, window, v.now),
            Err(_) if !v.telemetry.has_queue(&id) => Err(StatsError::UnknownQueue { queue: id }),
            Err(e) => Err(e),
        })
        .await?
        .map(Json)
        .map_err(stats_error)
}

/// `GET /v1/agents/{id}/stats?since=2026-11-23T08:00:00Z`.
pub async fn agent_stats(
    State(app): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<AgentStatsQuery>, QueryRejection>,
) -> Result<Json<AgentStats>, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    let since: Result<Option<Millis>, String> =
        q.since.as_deref().map(rfc3339_ms::parse).transpose();
    // An unknown agent is said first (404), whatever `since` says, as for queue stats.
    app.engine
        .read(move |v| {
            if !v.telemetry.has_agent(&id) {
                return Err(stats_error(StatsError::UnknownAgent { agent: id }));
            }
            let since = since.map_err(|message| {
                ApiError::unprocessable(
                    "invalid_since",
                    format!(
                        "`since` must be an RFC 3339 time such as 2026-11-23T08:00:00Z: {message}"
                    ),
                )
            })?;
            let since = since.unwrap_or_else(|| v.now.saturating_sub(RETENTION_MS));
            v.telemetry
                .agent_stats(&id, since, v.now)
                .map_err(stats_error)
        })
        .await?
        .map(Json)
}
