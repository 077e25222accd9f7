//! The read API: queues, agents and interactions as wallboards and PBX tooling see them.
//!
//! Views are copies made on the engine task and serialized here, off the engine task. Times are
//! RFC 3339 with milliseconds; durations are milliseconds (`*_ms`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::Json;
use serde::Serialize;

use crate::config::{Channel, Millis, Tier};
use crate::engine::decision::rfc3339_ms;
use crate::engine::event::Named;
use crate::engine::{Activity, AgentStatus, AgentView, InteractionView, QueueView, SlotView};
use crate::metrics::QueueTally;

use super::error::ApiError;
use super::AppState;

/// What a read endpoint without query parameters takes: a query sent anyway (a typo, or a
/// parameter of another endpoint such as `?after=` or `?window=`) is answered 400
/// `invalid_query`, as the endpoints that take some answer an unknown one, instead of being
/// ignored.
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<NoQuery, ApiError> {
        match parts.uri.query() {
            None | Some("") => Ok(NoQuery),
            Some(query) => Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "{} takes no query parameters (the query `{query}`)",
                    crate::api::plain_echo(parts.uri.path(), "a path")
                ),
            )),
        }
    }
}

/// Service figures since the daemon started.
#[derive(Debug, Serialize)]
pub struct SlaSoFar {
    #[serde(flatten)]
    pub counts: QueueTally,
    /// answered within `sla_ms` / (answered + abandoned); null before any.
    pub service_level: Option<f64>,
    pub abandon_rate: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct QueueJson {
    pub id: Arc<str>,
    pub open: bool,
    pub waiting: usize,
    pub waiting_by_channel: BTreeMap<Channel, usize>,
    /// Being offered to an agent (ringing), not answered yet.
    pub ringing: usize,
    /// When the longest-waiting unanswered interaction (waiting or ringing) entered the queue.
    pub oldest_entered_at: Option<String>,
    /// How long it has waited so far.
    pub oldest_wait_ms: Option<Millis>,
    /// Agents serving the queue, by tier (`"1"`, `"2"`…) and activity.
    pub agents: BTreeMap<Tier, BTreeMap<Activity, usize>>,
    pub sla_ms: Millis,
    pub sla: SlaSoFar,
}

impl QueueJson {
    pub fn new(view: QueueView, tally: QueueTally, now: Millis) -> QueueJson {
        QueueJson {
            oldest_entered_at: view.oldest_entered_at.map(rfc3339_ms::format),
            oldest_wait_ms: view.oldest_entered_at.map(|t| now.saturating_sub(t)),
            id: view.id,
            open: view.open,
            waiting: view.waiting,
            waiting_by_channel: view.waiting_by_channel,
            ringing: view.ringing,
            agents: view.agents,
            sla_ms: view.sla_ms,
            sla: SlaSoFar {
                service_level: tally.service_level(),
                abandon_rate: tally.abandon_rate(),
                counts: tally,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SlotJson {
    pub channel: Channel,
    pub phase: crate::engine::SlotPhase,
    pub interaction: Option<Arc<str>>,
    pub queue: Arc<str>,
    pub offer: Option<Arc<str>>,
    pub since: String,
    /// Offer expiry or wrap-up end.
    pub until: Option<String>,
}

impl From<SlotView> for SlotJson {
    fn from(s: SlotView) -> SlotJson {
        SlotJson {
            channel: s.channel,
            phase: s.phase,
            interaction: s.interaction,
            queue: s.queue,
            offer: s.offer,
            since: rfc3339_ms::format(s.since),
            until: s.until.map(rfc3339_ms::format),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AgentJson {
    pub id: Arc<str>,
    pub address: Arc<str>,
    pub status: AgentStatus,
    pub reason: Option<Arc<str>>,
    /// Wallboard state derived from status and slots.
    pub activity: Activity,
    /// Since when the agent has had this status.
    pub status_since: String,
    pub logged_in_since: Option<String>,
    pub tiers: BTreeMap<Arc<str>, Tier>,
    pub skills: Vec<Arc<str>>,
    pub capacity: BTreeMap<Channel, u32>,
    /// Interactions held per channel (offered, connected or in wrap-up).
    pub load: BTreeMap<Channel, u32>,
    /// Current interactions, one per slot.
    pub interactions: Vec<SlotJson>,
    pub idle_since: String,
    pub accepted_since_login: u64,
    pub consecutive_missed_offers: u32,
    pub backoff_until: Option<String>,
}

impl From<AgentView> for AgentJson {
    fn from(a: AgentView) -> AgentJson {
        AgentJson {
            id: a.id,
            address: a.address,
            status: a.status,
            reason: a.reason,
            activity: a.activity,
            status_since: rfc3339_ms::format(a.status_since),
            logged_in_since: a.logged_in_since.map(rfc3339_ms::format),
            tiers: a.tiers,
            skills: a.skills,
            capacity: a.capacity,
            load: a.load,
            interactions: a.slots.into_iter().map(SlotJson::from).collect(),
            idle_since: rfc3339_ms::format(a.idle_since),
            accepted_since_login: a.accepted_since_login,
            consecutive_missed_offers: a.consecutive_missed_offers,
            backoff_until: a.backoff_until.map(rfc3339_ms::format),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct QueuesJson {
    pub queues: Vec<QueueJson>,
}

#[derive(Debug, Serialize)]
pub struct AgentsJson {
    pub agents: Vec<AgentJson>,
}

/// `GET /v1/queues`.
pub async fn queues(State(app): State<AppState>, _: NoQuery) -> Result<Json<QueuesJson>, ApiError> {
    let queues = app
        .engine
        .read(|v| {
            let engine = v.core.engine();
            engine
                .queues()
                .into_iter()
                .map(|mut q| {
                    q.open = engine.queue_open_at(&q.id, v.now).unwrap_or(q.open);
                    let tally = v.telemetry.queue_tally(&q.id);
                    QueueJson::new(q, tally, v.now)
                })
                .collect()
        })
        .await?;
    Ok(Json(QueuesJson { queues }))
}

/// `GET /v1/queues/{id}`.
pub async fn queue(
    State(app): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
) -> Result<Json<QueueJson>, ApiError> {
    let wanted = id.clone();
    app.engine
        .read(move |v| {
            let engine = v.core.engine();
            engine.queue(&wanted).map(|mut q| {
                q.open = engine.queue_open_at(&q.id, v.now).unwrap_or(q.open);
                let tally = v.telemetry.queue_tally(&q.id);
                QueueJson::new(q, tally, v.now)
            })
        })
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found("unknown_queue", format!("unknown queue {}", Named(&id)))
        })
}

/// `GET /v1/agents`.
pub async fn agents(State(app): State<AppState>, _: NoQuery) -> Result<Json<AgentsJson>, ApiError> {
    let agents = app.engine.read(|v| v.core.engine().agents()).await?;
    Ok(Json(AgentsJson {
        agents: agents.into_iter().map(AgentJson::from).collect(),
    }))
}

/// `GET /v1/agents/{id}`.
pub async fn agent(
    State(app): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
) -> Result<Json<AgentJson>, ApiError> {
    let wanted = id.clone();
    app.engine
        .read(move |v| v.core.engine().agent(&wanted))
        .await?
        .map(|a| Json(AgentJson::from(a)))
        .ok_or_else(|| {
            ApiError::not_found("unknown_agent", format!("unknown agent {}", Named(&id)))
        })
}

/// `GET /v1/interactions/{id}` (state, owner, queue, step and full history).
pub async fn interaction(
    State(app): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
) -> Result<Json<InteractionView>, ApiError> {
    let wanted = id.clone();
    app.engine
        .read(move |v| v.core.engine().interaction(&wanted))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_interaction",
                format!(
                    "unknown interaction {} (never seen, or finished and no longer retained)",
                    Named(&id)
                ),
            )
        })
}
