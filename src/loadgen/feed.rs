//! Following later decisions with the long-poll (`GET /v1/decisions?after=SEQ&wait_ms=N`).
//!
//! Offers made when an agent frees up on a timer (wrap-up over, an offer expired) reach no event
//! response, so the simulated PBX reads them here, as a real one would. Owns one connection and
//! the `after` cursor; must never send events (those are the senders' slots) and never hold the
//! workload lock while waiting on the network.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::watch;

use super::client::Connection;
use super::workload::{WireDecision, Workload};
use super::Target;

/// How long one long-poll may wait on the server.
const WAIT_MS: u64 = 500;
/// Most decisions asked for per poll.
const PAGE: usize = 10_000;
/// Pause after a failed poll before the next try (the feed is not worth hammering a sick server).
const RETRY_AFTER: Duration = Duration::from_millis(100);

#[derive(Debug, Deserialize)]
struct Page {
    decisions: Vec<WireDecision>,
    next: u64,
}

/// What the feed did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedTotals {
    pub polls: u64,
    pub decisions: u64,
    pub errors: u64,
}

#[derive(Debug, Deserialize)]
struct Ready {
    next_seq: u64,
}

/// The cursor that skips every decision made so far (`GET /readyz`'s `next_seq`), so the first
/// poll of the measured phase fetches nothing from before it: against a daemon with a history
/// (an earlier run, real traffic) it asked for the oldest decisions held, up to a page of
/// 10,000, at the start of the clock. (Logins make no decisions, so a fresh daemon, as
/// `bench.sh` starts for each run, had none to send.) `None` (from the oldest held) if it
/// cannot be read.
pub async fn current_cursor(target: &Target) -> Option<u64> {
    let mut connection = Connection::open(target.addr, &target.host).await.ok()?;
    let (status, body) = connection.get("/readyz").await.ok()?;
    if status != 200 {
        return None;
    }
    let ready: Ready = serde_json::from_slice(&body).ok()?;
    ready.next_seq.checked_sub(1)
}

/// Poll until `stop` turns true, feeding every decision after `after` (`None`: from the oldest
/// held) to the workload.
pub async fn follow(
    target: Target,
    workload: &Mutex<Workload>,
    start: Instant,
    after: Option<u64>,
    mut stop: watch::Receiver<bool>,
) -> FeedTotals {
    let mut totals = FeedTotals::default();
    let mut connection: Option<Connection> = None;
    let mut after = after;
    while !*stop.borrow() {
        let path = match after {
            Some(seq) => format!("/v1/decisions?after={seq}&wait_ms={WAIT_MS}&limit={PAGE}"),
            None => format!("/v1/decisions?wait_ms={WAIT_MS}&limit={PAGE}"),
        };
        let answer = async {
            if connection.is_none() {
                connection = Some(Connection::open(target.addr, &target.host).await?);
            }
            match connection.as_mut() {
                Some(c) => c.get(&path).await.map(Some),
                None => Ok(None),
            }
        };
        let answer = tokio::select! {
            _ = stop.changed() => break,
            answer = answer => answer,
        };
        totals.polls += 1;
        match answer {
            Ok(Some((200, body))) => match serde_json::from_slice::<Page>(&body) {
                Ok(page) => {
                    totals.decisions += page.decisions.len() as u64;
                    after = Some(page.next);
                    let now = start.elapsed();
                    if let Ok(mut w) = workload.lock() {
                        for d in &page.decisions {
                            w.on_decision(d, now);
                        }
                    }
                }
                Err(_) => totals.errors += 1,
            },
            // 410: the ring moved past our cursor; start again from the oldest held.
            Ok(Some((410, _))) => {
                totals.errors += 1;
                after = None;
            }
            Ok(_) | Err(_) => {
                totals.errors += 1;
                connection = None;
                tokio::select! {
                    _ = stop.changed() => break,
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        }
    }
    totals
}
