//! Drives the day in miniature (`tests/metrics_support/day.rs`) against a running `tierline
//! serve`, the way a PBX would: `scripts/e2e-prometheus.sh` uses it so a real Prometheus scrapes
//! the real daemon.
//!
//! ```text
//! day_driver config UNIT_MS SUPPORT_MAX_WAIT_UNITS API_LISTEN METRICS_LISTEN SUBSCRIBER_URL
//!     print the day's config file (routing + [server], [metrics], one [[subscriber]] "pbx")
//! day_driver drive BASE_URL UNIT_MS CONFIG_FILE
//!     post the day's events to BASE_URL/v1/events, each at its time (t × UNIT_MS after the
//!     start); at 250 units put CONFIG_FILE back with PUT /v1/config (a live reload that changes
//!     nothing); after the day post one event the daemon must refuse; print
//!     "events posted: N" (the day's events, all applied) and "day done"
//! ```
//!
//! `drive` fails (exit 1, saying which) if the daemon does not answer an event as expected, so a
//! run where the wall clock drifted far enough to change the story is caught here first.

#[path = "../tests/metrics_support/day.rs"]
mod day;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::time::Instant;

/// When, in scenario units, the live reload happens.
const RELOAD_AT: u64 = 250;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["config", unit, max_wait, api, metrics, subscriber] => {
            let daemon = format!(
                "[server]\nlisten = \"{api}\"\n\n[metrics]\nlisten = \"{metrics}\"\n\n\
                 [[subscriber]]\nname = \"pbx\"\nurl = \"{subscriber}\"\n\
                 retry_initial_ms = 100\nretry_max_ms = 1000\n"
            );
            print!(
                "{}",
                day::config_toml(number(unit)?, number(max_wait)?, &daemon)
            );
            Ok(())
        }
        ["drive", base, unit, config] => drive(base, number(unit)?, config).await,
        _ => bail!(
            "usage: day_driver config UNIT_MS SUPPORT_MAX_WAIT_UNITS API_LISTEN METRICS_LISTEN \
             SUBSCRIBER_URL | day_driver drive BASE_URL UNIT_MS CONFIG_FILE"
        ),
    }
}

fn number(text: &str) -> Result<u64> {
    text.parse()
        .with_context(|| format!("`{text}` is not a whole number"))
}

async fn drive(base: &str, unit: u64, config_file: &str) -> Result<()> {
    let config =
        std::fs::read_to_string(config_file).with_context(|| format!("reading {config_file}"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let start = Instant::now();
    let at = |t: u64| start + Duration::from_millis(t * unit);
    let mut reloaded = false;
    let events = day::api_events();
    let posted = events.len();
    for (t, body) in events {
        if !reloaded && t >= RELOAD_AT {
            tokio::time::sleep_until(at(RELOAD_AT)).await;
            reload(&http, base, &config).await?;
            reloaded = true;
        }
        tokio::time::sleep_until(at(t)).await;
        let answer = post(&http, base, &body).await?;
        if answer["results"][0]["status"] != "applied" {
            bail!("at {t} units the daemon did not apply {body}: {answer}");
        }
    }
    tokio::time::sleep_until(at(day::DAY_END)).await;
    // A PBX bug: accepting an offer that does not exist. The daemon must refuse it (4xx).
    let bogus = json!({"id": "day-bogus", "type": "offer.accepted",
                       "interaction": "no-such-call", "agent": "ann"});
    let r = http
        .post(format!("{base}/v1/events"))
        .json(&bogus)
        .send()
        .await?;
    if !r.status().is_client_error() {
        bail!("the bogus event was answered {}", r.status());
    }
    println!("events posted: {posted}");
    println!("day done");
    Ok(())
}

async fn post(http: &reqwest::Client, base: &str, body: &Value) -> Result<Value> {
    let r = http
        .post(format!("{base}/v1/events"))
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST /v1/events {body}"))?;
    let status = r.status();
    let answer: Value = r.json().await.context("the answer is not JSON")?;
    if !status.is_success() {
        bail!("POST /v1/events {body} was answered {status}: {answer}");
    }
    Ok(answer)
}

async fn reload(http: &reqwest::Client, base: &str, config: &str) -> Result<()> {
    let r = http
        .put(format!("{base}/v1/config"))
        .header("content-type", "application/toml")
        .body(config.to_string())
        .send()
        .await
        .context("PUT /v1/config")?;
    if !r.status().is_success() {
        bail!(
            "PUT /v1/config was answered {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}
