//! Outbound webhooks: each `[[subscriber]]` gets its own task that POSTs decision batches, in seq
//! order, signed like inbound events, retrying with exponential back-off and jitter until it is
//! answered 2xx.
//!
//! A subscriber is just another reader of the engine's decision log, with its own cursor: a slow
//! or dead subscriber never blocks routing or other subscribers, and costs no memory beyond the
//! bounded log. If it falls so far behind that its next decisions have left the log, it logs how
//! many were lost, skips to the oldest still held and carries on. Jitter (randomness) lives here,
//! never in the engine.
//!
//! With a journal, the cursor is durable (`journal::AckFile`): after every 2xx the subscriber's
//! task records the last seq it covered, off the engine task, and after a restart delivery
//! resumes right after it. Replay re-creates the decisions with the same seqs and keeps them in
//! the decision log, so what was made but not acknowledged before a crash is sent again
//! (at-least-once: a receiver de-duplicates by seq). A subscriber seen for the first time starts
//! with the decisions made from then on, and that starting point is recorded at start, before
//! the engine task makes a decision (`record_first_start`), or, for one a live config change
//! adds, before the engine applies the change (`daemon::subscribers`, which also stops and
//! restarts subscribers as the config changes).
//!
//! Each POST counts in `tierline_subscriber_deliveries_total{subscriber,result}`: `ok` when
//! answered 2xx, `failed` per failed attempt (it is retried), `dropped` once per gap of decisions
//! lost because the subscriber fell behind the decision log.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;

use crate::config::daemon::SubscriberConfig;
use crate::daemon::clock::Clock;
use crate::daemon::decision_log::FeedError;
use crate::daemon::shutdown::Shutdown;
use crate::daemon::task::{EngineHandle, SubmitError};
use crate::journal::AckFile;
use crate::metrics::{DeliveryResult, Metrics};

use super::auth::{sign, SIGNATURE_HEADER};
use super::secret::{EnvLookup, RotatingSecret, SecretError, SecretSetting};

/// How one subscriber is delivered to.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// Who it is: the configured name, else the URL (names its ack file).
    pub name: String,
    /// What logs and the metric label show: the configured name, else the URL without its
    /// user name, password, query and fragment (`redacted_url`), which may hold credentials.
    pub label: String,
    pub url: String,
    /// The signing secret; a reload may rotate it (read from its file or env var again).
    pub secret: Option<RotatingSecret>,
    /// Decision types delivered (empty = all).
    pub types: Vec<String>,
    /// First retry delay; doubles per failure up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Decisions per POST.
    pub batch_max: usize,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Subscriber {
    /// From config entry number `index`, reading the secret from the env var or file it names
    /// (`env` = `std::env::var`).
    pub fn from_config(
        index: usize,
        cfg: &SubscriberConfig,
        env: EnvLookup<'_>,
    ) -> Result<Subscriber, SecretError> {
        let setting = SecretSetting::from_pair(
            &format!("subscriber[{index}]"),
            "secret",
            cfg.secret_env.as_deref(),
            cfg.secret_file.as_deref(),
        )?;
        let secret = match setting {
            None => None,
            Some(setting) => Some(RotatingSecret::load(setting, env)?),
        };
        Ok(Subscriber {
            name: cfg.name.clone().unwrap_or_else(|| cfg.url.clone()),
            label: cfg.name.clone().unwrap_or_else(|| redacted_url(&cfg.url)),
            url: cfg.url.clone(),
            secret,
            types: cfg.types.clone(),
            retry_initial: Duration::from_millis(cfg.retry_initial_ms.max(1)),
            retry_max: Duration::from_millis(cfg.retry_max_ms.max(cfg.retry_initial_ms).max(1)),
            batch_max: cfg.batch_max.max(1),
            timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
        })
    }

    /// The delay before retry number `attempt` (0-based): half the exponential step plus a
    /// random part of the other half ("equal jitter"), so retries from many daemons spread out.
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let step = self
            .retry_initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.retry_max);
        let half = step / 2;
        half + Duration::from_nanos(rng.gen_range(0..=half.as_nanos().min(u64::MAX as u128) as u64))
    }

    /// The wait before attempt `attempt + 1`: the back-off, or the pause the receiver asked
    /// for (`Retry-After`) when longer, at most `retry_max`.
    pub fn retry_delay(
        &self,
        attempt: u32,
        asked_pause: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let backoff = self.backoff(attempt, rng);
        asked_pause.map_or(backoff, |pause| backoff.max(pause.min(self.retry_max)))
    }

    fn wants(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == kind)
    }
}

pub use crate::config::daemon::redacted_url;

/// Where a subscriber starts and where it records its progress.
#[derive(Debug, Clone)]
pub struct Cursor {
    /// Without an ack file (or when it holds nothing yet): deliver decisions with seq > this
    /// (`None`: from the oldest decision held).
    pub start_after: Option<u64>,
    /// The durable cursor (with a journal): read at start, written after every acknowledged batch.
    pub acks: Option<AckFile>,
}

/// Record where a subscriber seen for the first time starts (`cursor.start_after`), if it has an
/// ack file and nothing is recorded in it yet. Called at start, before the engine task makes any
/// decision: recorded later, by the subscriber's task, a crash in between would make the next
/// start take it for new again and skip the decisions made meanwhile. Blocking file I/O (like
/// recovery, it runs before the daemon serves). Whether it wrote the record.
pub fn record_first_start(sub: &Subscriber, cursor: &Cursor) -> bool {
    let Some(acks) = &cursor.acks else {
        return false;
    };
    // An ack to resume from, or a file that cannot be read: `starting_point` deals with those.
    if let Ok(None) = acks.load() {
        let acked = cursor.start_after.unwrap_or(0);
        match acks.store(acked) {
            Ok(()) => {
                tracing::info!(subscriber = %sub.label, after = acked, "new subscriber starts with the decisions after this seq");
                return true;
            }
            Err(e) => {
                tracing::warn!(subscriber = %sub.label, error = %e, "cannot record the subscriber's starting point")
            }
        }
    }
    false
}

/// How a config change stops one subscriber's task, and what it acknowledged.
#[derive(Debug, Clone)]
pub struct Control {
    /// Triggered to stop the task (a config change removed or changed the subscriber). The task
    /// stops only between steps: while it waits for decisions, or at a POST attempt (which it
    /// abandons, unacknowledged), never while it records an ack, so once its `JoinHandle`
    /// resolves nothing of it writes the ack file any more.
    pub stop: Shutdown,
    /// The cursor after the last batch acknowledged (or skipped by `types`): the seq delivery
    /// would continue after (`None`: from the oldest decision held).
    pub progress: watch::Sender<Option<u64>>,
    /// Held by each POST attempt for as long as it is on the wire, and through the wait after
    /// a failed one; shared with the task that replaces this one when a change edits the
    /// subscriber (`Control::after`). A stop abandons the attempt, but the attempt itself runs
    /// on until answered or timed out: the receiver is still working on it, so the next task's
    /// first POST waits for it. A receiver never has two of a subscriber's POSTs open at once.
    /// It holds the pause a receiver asked for (`Retry-After`: until when, and for which URL),
    /// so an edit during the pause does not cut it short unless it moves the subscriber.
    pub in_flight: Arc<tokio::sync::Mutex<Pause>>,
}

impl Control {
    pub fn new(start_after: Option<u64>) -> Control {
        Control {
            stop: Shutdown::new(),
            progress: watch::Sender::new(start_after),
            in_flight: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// A control for the task replacing the one `previous` controlled: its POSTs wait for an
    /// attempt the previous task abandoned.
    pub fn after(previous: &Control, start_after: Option<u64>) -> Control {
        Control {
            in_flight: Arc::clone(&previous.in_flight),
            ..Control::new(start_after)
        }
    }
}

/// A pause a receiver asked for: no POST to `url` before the instant.
pub type Pause = Option<(tokio::time::Instant, String)>;

/// Start delivering decisions after the cursor. The task ends on shutdown, or when
/// `control.stop` is triggered (see `Control`).
pub fn spawn(
    subscriber: Subscriber,
    engine: EngineHandle,
    clock: Clock,
    shutdown: Shutdown,
    control: Control,
    cursor: Cursor,
    metrics: Metrics,
) -> tokio::task::JoinHandle<()> {
    // Shutdown stops the task the way a config change does (between steps, never while it
    // records an ack), so no write of it outlives the task.
    let forward = (control.stop.clone(), shutdown);
    tokio::spawn(async move {
        let (stop, shutdown) = forward;
        tokio::select! {
            () = shutdown.wait() => stop.trigger(),
            () = stop.wait() => {}
        }
    });
    tokio::spawn(async move {
        deliver(&subscriber, &engine, clock, cursor, &control, &metrics).await;
        tracing::debug!(subscriber = %subscriber.label, "subscriber stopped");
    })
}

/// Run blocking ack-file I/O off the runtime's worker threads.
async fn on_blocking_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::journal::JournalError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the ack file task failed: {e}")),
    }
}

/// Where delivery starts: after the durable ack if there is one (clamped to the decisions that
/// exist), else after `cursor.start_after`, which is then recorded as the starting point.
async fn starting_point(sub: &Subscriber, cursor: &Cursor, next_seq: u64) -> Option<u64> {
    let Some(acks) = cursor.acks.clone() else {
        return cursor.start_after;
    };
    let path = acks.path().to_path_buf();
    let loaded = {
        let acks = acks.clone();
        on_blocking_thread(move || acks.load()).await
    };
    match loaded {
        Ok(Some(acked)) if acked < next_seq => {
            tracing::info!(subscriber = %sub.label, acked, "subscriber resumes after its last acknowledged decision");
            Some(acked)
        }
        Ok(Some(acked)) => {
            // Only possible if the journal lost its tail (sync = "none" and an OS crash): the
            // seqs after the newest decision will be reused, so start right after it.
            tracing::warn!(
                subscriber = %sub.label,
                acked,
                newest = next_seq.saturating_sub(1),
                "subscriber acknowledged decisions the journal does not hold; resuming after the newest"
            );
            next_seq.checked_sub(1)
        }
        Ok(None) => {
            let start = cursor.start_after;
            let acked = start.unwrap_or(0);
            if let Err(e) = on_blocking_thread(move || acks.store(acked)).await {
                tracing::warn!(subscriber = %sub.label, error = %e, "cannot record the subscriber's starting point");
            }
            start
        }
        Err(e) => {
            // At-least-once: with the ack unknown, send everything still held.
            tracing::error!(
                subscriber = %sub.label,
                file = %path.display(),
                error = %e,
                "cannot read the subscriber's ack file; delivering from the oldest decision held"
            );
            None
        }
    }
}

/// Deliver decisions after the cursor, recording each acknowledged batch in the ack file.
async fn deliver(
    sub: &Subscriber,
    engine: &EngineHandle,
    clock: Clock,
    start: Cursor,
    control: &Control,
    metrics: &Metrics,
) {
    // No redirects: reqwest would turn a POST answered 301/302/303 into a body-less GET, and
    // that GET's 2xx would count as the batch delivered. A 3xx is a failed attempt (retried,
    // its `Location` logged) until the subscriber's URL is corrected.
    let client = match reqwest::Client::builder()
        .user_agent(concat!("tierline/", env!("CARGO_PKG_VERSION")))
        .timeout(sub.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(subscriber = %sub.label, error = %e, "cannot build HTTP client");
            return;
        }
    };
    let mut seq: watch::Receiver<u64> = engine.next_seq_watch();
    let next_seq = *seq.borrow_and_update();
    // Where the subscriber is: for a config change waiting on it, and as
    // `tierline_subscriber_acked_seq` (0 until it has passed a decision).
    let publish = |cursor: Option<u64>| {
        control.progress.send_replace(cursor);
        metrics.subscriber_acked(&sub.label, cursor.unwrap_or(0));
    };
    let mut cursor = starting_point(sub, &start, next_seq).await;
    publish(cursor);
    let stop = &control.stop;
    loop {
        let threshold = cursor.map_or(0, |c| c + 1);
        tokio::select! {
            biased;
            () = stop.wait() => return,
            waited = seq.wait_for(|next| *next > threshold) => if waited.is_err() { return },
        }
        // The newest seq known before reading: should the read find nothing after the cursor
        // (a cursor of `None`, "from the oldest held", before any decision exists: `threshold`
        // 0 does not wait for that), wait for a decision past it instead of asking again at once.
        let known = *seq.borrow_and_update();
        let limit = sub.batch_max;
        let read = engine.read_core(move |v| v.core.decisions_after(cursor, limit));
        let page = match tokio::select! {
            biased;
            () = stop.wait() => return,
            read = read => read,
        } {
            Ok(Ok(page)) => page,
            Ok(Err(FeedError::Gone(gone))) => {
                tracing::error!(
                    subscriber = %sub.label,
                    lost = gone.oldest.saturating_sub(cursor.map_or(0, |c| c + 1)),
                    "subscriber fell behind the decision log; skipping to the oldest decision held"
                );
                metrics.subscriber_delivery(&sub.label, DeliveryResult::Dropped);
                cursor = gone.oldest.checked_sub(1);
                publish(cursor);
                continue;
            }
            // `starting_point` never starts past the newest decision and the cursor only moves
            // to seqs read; should it happen anyway, resume after the newest, as at start.
            Ok(Err(FeedError::Ahead(ahead))) => {
                tracing::warn!(subscriber = %sub.label, after = ahead.after, newest = ahead.newest,
                    "subscriber cursor is past the newest decision; resuming after the newest");
                cursor = Some(ahead.newest);
                publish(cursor);
                continue;
            }
            Err(SubmitError::Stopped) => return,
            Err(_) => {
                tokio::select! {
                    biased;
                    () = stop.wait() => return,
                    () = tokio::time::sleep(sub.retry_initial) => {}
                }
                continue;
            }
        };
        if page.decisions.is_empty() {
            tokio::select! {
                biased;
                () = stop.wait() => return,
                waited = seq.wait_for(|next| *next > known) => if waited.is_err() { return },
            }
            continue;
        }
        let wanted: Vec<&str> = page
            .decisions
            .iter()
            .filter(|d| sub.wants(d.kind))
            .map(|d| &*d.json)
            .collect();
        if !wanted.is_empty() {
            let body = format!("{{\"decisions\":[{}]}}", wanted.join(","));
            tokio::select! {
                // A POST already answered is taken as acknowledged rather than abandoned.
                biased;
                () = post_until_accepted(sub, &client, clock, body, metrics, &control.in_flight) => {}
                // Abandoned, not acknowledged: sent again from the last ack.
                () = stop.wait() => return,
            }
        }
        if let Some(last) = page.decisions.last() {
            cursor = Some(last.seq);
            publish(cursor);
            if let Some(acks) = start.acks.clone() {
                let acked = last.seq;
                // A lost ack only costs redelivery, so a failed write is logged, not retried.
                if let Err(e) = on_blocking_thread(move || acks.store(acked)).await {
                    tracing::warn!(subscriber = %sub.label, acked, error = %e, "cannot record the subscriber's acknowledged seq");
                }
            }
        }
    }
}

async fn post_until_accepted(
    sub: &Subscriber,
    client: &reqwest::Client,
    clock: Clock,
    body: String,
    metrics: &Metrics,
    in_flight: &Arc<tokio::sync::Mutex<Pause>>,
) {
    let mut attempt: u32 = 0;
    loop {
        // Wait for an attempt a stopped task left on the wire, then for the rest of a pause its
        // receiver asked for (`Control::in_flight`).
        let mut on_the_wire = Arc::clone(in_flight).lock_owned().await;
        if let Some((until, url)) = on_the_wire.take() {
            if url == sub.url {
                tokio::time::sleep_until(until).await;
            }
        }
        let mut request = client
            .post(&sub.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(secret) = &sub.secret {
            request = request.header(
                SIGNATURE_HEADER,
                sign(secret.get().expose(), clock.now_s(), body.as_bytes()),
            );
        }
        // The attempt runs as its own task, holding `on_the_wire`: should this task be stopped
        // meanwhile, the attempt goes on to its answer or timeout, and only then lets the next
        // POST to this subscriber go.
        let sent = tokio::spawn(async move {
            let answer = request.send().await;
            (answer, on_the_wire)
        });
        // `held`: the lock again once the attempt is over (kept through the wait that follows).
        let (answer, mut held) = match sent.await {
            Ok((answer, held)) => (
                answer.map_err(|e| {
                    let timed_out = e.is_timeout();
                    let mut text = crate::api::error::with_causes(&e.without_url());
                    if timed_out {
                        text.push_str(&format!(
                            " (no answer within timeout_ms = {})",
                            sub.timeout.as_millis()
                        ));
                    }
                    text
                }),
                Some(held),
            ),
            Err(e) => (Err(format!("the attempt's task failed: {e}")), None),
        };
        // A receiver asking for a pause (`Retry-After` on a 429, a 503, any refusal) gets it,
        // up to the subscriber's `retry_max_ms`.
        let asked_pause = match &answer {
            Ok(response) if !response.status().is_success() => response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, clock.now_s())),
            _ => None,
        };
        let failure = match answer {
            Ok(response) if response.status().is_success() => {
                metrics.subscriber_delivery(&sub.label, DeliveryResult::Delivered);
                return;
            }
            Ok(response) if response.status().is_redirection() => format!(
                "answered {} to {} (redirects are not followed: set the subscriber's url to \
                 where it points)",
                response.status(),
                response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("no Location")
            ),
            Ok(response) => format!("answered {}", response.status()),
            // Without the URL, which may hold credentials (the log names the subscriber); with
            // the causes, which tell a timeout from a refused connection ("error sending
            // request" alone says neither).
            Err(text) => text,
        };
        metrics.subscriber_delivery(&sub.label, DeliveryResult::Failed);
        let delay = sub.retry_delay(attempt, asked_pause, &mut rand::thread_rng());
        if let (Some(_), Some(held)) = (asked_pause, held.as_mut()) {
            // Kept for a task replacing this one during the wait (an edit of the subscriber).
            **held = tokio::time::Instant::now()
                .checked_add(delay)
                .map(|until| (until, sub.url.clone()));
        }
        tracing::warn!(
            subscriber = %sub.label,
            attempt = attempt + 1,
            retry_in_ms = delay.as_millis() as u64,
            retry_after_s = asked_pause.map(|p| p.as_secs()),
            error = %failure,
            "decision delivery failed; retrying"
        );
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
        drop(held);
    }
}

/// The pause a `Retry-After` value asks for (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date
/// (then from `now_s`, Unix seconds; a date past is no pause). `None` for anything else.
fn retry_after(value: &str, now_s: u64) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than a u64 holds is "a very long time": capped by `retry_max_ms`.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_s = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at_s.saturating_sub(now_s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_pause_the_receiver_asks_for_is_kept_up_to_retry_max() {
        let s = sub(); // back-off steps of 100 ms doubling, capped at 1 s
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let secs = Duration::from_secs;
        assert_eq!(
            s.retry_delay(0, Some(Duration::from_millis(700)), &mut rng),
            Duration::from_millis(700)
        );
        assert_eq!(
            s.retry_delay(0, Some(secs(10)), &mut rng),
            secs(1),
            "capped at retry_max"
        );
        for attempt in [0, 3, 30] {
            let plain = s.retry_delay(
                attempt,
                None,
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
            );
            let zero = s.retry_delay(
                attempt,
                Some(Duration::ZERO),
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
            );
            assert_eq!(
                plain, zero,
                "a pause shorter than the back-off changes nothing"
            );
            assert_eq!(
                plain,
                s.backoff(attempt, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1))
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(retry_after("10", 0), Some(Duration::from_secs(10)));
        assert_eq!(retry_after(" 0 ", 0), Some(Duration::ZERO));
        // Sun, 06 Nov 1994 08:49:37 GMT is Unix 784111777.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(retry_after(date, 784_111_770), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(date, 784_111_800), Some(Duration::ZERO));
        assert_eq!(
            retry_after("18446744073709551616", 0),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(retry_after("-1", 0), None);
        assert_eq!(retry_after("soon", 0), None);
        assert_eq!(retry_after("1.5", 0), None);
    }

    fn sub() -> Subscriber {
        Subscriber {
            name: "pbx".into(),
            label: "pbx".into(),
            url: "http://127.0.0.1:1/".into(),
            secret: None,
            types: vec!["offer".into()],
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(1_000),
            batch_max: 10,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn back_off_doubles_with_jitter_and_is_capped() {
        let s = sub();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (attempt, step_ms) in [
            (0, 100u64),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1_000),
            (30, 1_000),
        ] {
            let d = s.backoff(attempt, &mut rng).as_millis() as u64;
            assert!(
                d >= step_ms / 2 && d <= step_ms,
                "attempt {attempt}: {d} ms not in [{}, {step_ms}]",
                step_ms / 2
            );
        }
    }

    #[test]
    fn a_type_filter_selects_decisions() {
        let s = sub();
        assert!(s.wants("offer"));
        assert!(!s.wants("queued"));
        let all = Subscriber {
            types: vec![],
            ..sub()
        };
        assert!(all.wants("queued"));
    }

    #[test]
    fn credentials_and_queries_are_hidden_from_what_logs_and_metrics_show() {
        for (url, shown) in [
            ("http://pbx:8080/hook", "http://pbx:8080/hook"),
            (
                "https://user:s3cret@pbx.example/hook",
                "https://…@pbx.example/hook",
            ),
            (
                "https://token@pbx.example/hook",
                "https://…@pbx.example/hook",
            ),
            ("http://pbx/hook?key=s3cret", "http://pbx/hook…"),
            ("http://u:p@pbx/hook?key=s3cret#x", "http://…@pbx/hook…"),
            ("not a url", "(a URL that does not parse)"),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }

    #[test]
    fn an_unnamed_subscriber_is_labelled_without_its_credentials_but_keeps_its_identity() {
        let url = "https://user:s3cret@pbx.example/hook?key=k3y";
        let no_env = |_: &str| -> Option<String> { None };
        let unnamed = Subscriber::from_config(0, &SubscriberConfig::new(url), &no_env).unwrap();
        assert_eq!(unnamed.label, "https://…@pbx.example/hook…");
        // The ack file is still found by the whole URL, as before.
        assert_eq!(unnamed.name, url);
        assert_eq!(unnamed.url, url);
        let mut cfg = SubscriberConfig::new(url);
        cfg.name = Some("pbx".into());
        let named = Subscriber::from_config(0, &cfg, &no_env).unwrap();
        assert_eq!((named.name.as_str(), named.label.as_str()), ("pbx", "pbx"));
    }
}
