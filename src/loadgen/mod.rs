//! The load generator (`tierline loadgen`) and the bare-hyper baseline it is compared with.
//!
//! An open-loop run: a pacer thread releases send slots at their intended times (constant rate or
//! Poisson) into a bounded channel; `--connections` sender tasks, each with one keep-alive
//! connection, take a slot, ask the simulated PBX (`workload`) which event to send, send it, and
//! record latency from the slot's *intended* time, so a server stall costs every request queued
//! behind it (no coordinated omission). In tierline mode a long-poll follower feeds decisions made
//! later (timers) back to the PBX model. The result is a JSON report (`report`).
//!
//! Owns nothing of the daemon: it talks to it over HTTP only, like any PBX, and must never link
//! to daemon internals. Layout: `schedule` (intended times, pacer), `workload` (lifecycles),
//! `client` (one connection), `feed` (long-poll), `report` (histograms, JSON), `scrape` (timer
//! lateness from /metrics), `baseline` (the bare server).

pub mod baseline;
pub mod client;
pub mod feed;
pub mod report;
pub mod schedule;
pub mod scrape;
pub mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::watch;

use self::client::Connection;
use self::report::{Failure, Recorder, Report, RunSettings, RunTotals};
use self::schedule::{pace, Arrivals, Schedule, Slot, ThreadClock};
use self::workload::{Mix, Planned, WireDecision, Workload, WorkloadSettings};

/// Slots waiting for a free sender. When full, the pacer blocks; slots released late keep their
/// intended times, so the wait still shows up as latency.
const SLOT_QUEUE: usize = 65_536;
/// How far ahead of its own start the run sets the clock's zero (see `run`).
const START_LEAD: Duration = Duration::from_millis(100);

/// Agent logins per request in the setup phase.
const LOGIN_BATCH: usize = 200;

/// Which server is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The tierline daemon: logins are checked, decisions drive the lifecycles.
    Tierline,
    /// The bare-hyper baseline: same requests, the answers are ignored and offers are pretended.
    Baseline,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Tierline => "tierline",
            Mode::Baseline => "baseline",
        }
    }
}

/// A count flag that 0 would make meaningless (no threads, no interactions tracked).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{text}` is not a count: {e}")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 10, 10s, 500ms, 2m, 1h)"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("`{text}` must be zero or more"));
    }
    match Duration::try_from_secs_f64(value * scale) {
        Ok(d) if d <= MAX_FLAG_DURATION => Ok(d),
        _ => Err(format!(
            "`{text}` is longer than a year, the longest a run may take"
        )),
    }
}

impl LoadgenArgs {
    /// The arguments `tierline loadgen FLAGS…` gets: every flag not given takes its default, and
    /// a flag the command would refuse is refused the same way (for tests and embedders, so
    /// they never restate the defaults).
    pub fn from_flags<I, T>(flags: I) -> Result<LoadgenArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            args: LoadgenArgs,
        }
        let program = std::iter::once(std::ffi::OsString::from("loadgen"));
        <Command as clap::Parser>::try_parse_from(program.chain(flags.into_iter().map(Into::into)))
            .map(|c| c.args)
    }
}

/// Longest `--duration`, `--timeout`, `--drain` or `--pace-quantum`: a year (so that the run's
/// deadlines always fit the clock).
const MAX_FLAG_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `tierline loadgen` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// Base URL of the server under test (http only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// tierline = the daemon; baseline = the bare server (`tierline baseline-server`).
    #[arg(long, value_enum, default_value_t = Mode::Tierline)]
    pub mode: Mode,
    /// Target events per second in the measured phase (every event type counts).
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Length of the measured phase (10, 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Constant spacing or Poisson arrivals.
    #[arg(long, value_enum, default_value_t = Arrivals::Constant)]
    pub arrivals: Arrivals,
    /// Keep-alive connections (one request in flight on each).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Agents logged in during setup.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub agents: u32,
    /// Queues used, `q0..q{N-1}`; they must exist in the daemon's config (config/bench.toml has 32).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub queues: u32,
    /// Interactions tracked at once (default: one per agent).
    #[arg(long, value_parser = at_least_one)]
    pub max_live: Option<usize>,
    /// Seeds the schedule and the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Prefix of every id (default: derived from the start time, so runs never collide).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Prometheus page to read `tierline_timer_lateness_seconds` from, before the run and after
    /// it: the report covers the timers fired in between.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// A request unanswered this long counts as a `timeout` failure.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// After the schedule ends, slots not yet sent within this long count as `unsent`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
    /// A run is reported `sustained` only if its p99 (from the intended time) is under this.
    #[arg(long, default_value_t = 50.0)]
    pub sustained_p99_ms: f64,
    /// Runtime worker threads of the generator (it shares the machine with the server).
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub threads: usize,
    /// The pacer wakes at most once per this long and releases every slot already due, so a
    /// slot may go out up to this late (counted in its latency, which runs from its intended
    /// time). `0s` wakes for every slot.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub pace_quantum: Duration,
    /// Process id of the server under test, on this machine (Linux): its CPU time (user +
    /// system, from /proc/PID/stat) during the measured phase goes into the report
    /// (`server_cpu_s`), without the setup before it or the scrape after it.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// A run that could not happen or could not be reported.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("--url `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error(transparent)]
    Schedule(#[from] schedule::ScheduleError),
    #[error("--connections must be at least 1")]
    Connections,
    #[error("--timeout must be longer than zero")]
    Timeout,
    #[error("setup: {0}")]
    Setup(String),
    #[error("cannot write the report to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the server is.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
}

impl Target {
    pub async fn resolve(url: &str) -> Result<Target, LoadgenError> {
        let bad = |reason: &str| LoadgenError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(bad(&format!("scheme `{other}` is not supported, use http")))
            }
            None => return Err(bad("needs a scheme, e.g. http://127.0.0.1:8080")),
        }
        let host = uri.host().ok_or_else(|| bad("has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| bad(&format!("cannot resolve: {e}")))?
            .next()
            .ok_or_else(|| bad("resolves to no address"))?;
        Ok(Target {
            addr,
            host: format!("{host}:{port}"),
        })
    }
}

/// Shared by the senders.
struct Run {
    target: Target,
    mode: Mode,
    workload: Mutex<Workload>,
    start: Instant,
    timeout: Duration,
    /// After this, slots are counted `unsent` instead of sent.
    give_up_at: Instant,
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<AnswerResult>,
}

#[derive(Debug, Deserialize)]
struct AnswerResult {
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: String,
    /// Why it was refused (`{"code":…,"message":…}`), when it was.
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    decisions: Vec<WireDecision>,
}

/// Apply an answer to the workload: results, decisions, and in baseline mode a pretend offer.
fn digest(run: &Run, planned: &Planned, status: u16, body: &[u8], now: Duration) {
    let answer = if status == 200 {
        serde_json::from_slice::<Answer>(body).ok()
    } else {
        None
    };
    let Ok(mut workload) = run.workload.lock() else {
        return;
    };
    match answer {
        Some(answer) => {
            for result in &answer.results {
                workload.on_result(&result.status);
                if run.mode == Mode::Tierline {
                    for d in &result.decisions {
                        workload.on_decision(d, now);
                    }
                }
            }
            if let (Mode::Baseline, Some(interaction)) = (run.mode, &planned.arrival) {
                workload.pretend_offered(interaction);
            }
            workload.on_answer(planned, true);
        }
        None => {
            if status == 200 {
                workload.on_result("unparsable");
            }
            workload.on_answer(planned, false);
        }
    }
}

/// `recorder` is made before the clock starts: its histograms are large zeroed allocations,
/// and making them for every connection at once held up the first slots.
async fn sender(
    run: Arc<Run>,
    mut connection: Option<Connection>,
    mut recorder: Recorder,
    slots: async_channel::Receiver<Slot>,
) -> Recorder {
    while let Ok(slot) = slots.recv().await {
        if Instant::now() > run.give_up_at {
            recorder.failed(Failure::Unsent, slot.intended, run.start.elapsed());
            continue;
        }
        let mut planned = match run.workload.lock() {
            Ok(mut w) => w.next_event(slot.intended),
            Err(_) => {
                recorder.failed(Failure::Unsent, slot.intended, run.start.elapsed());
                continue;
            }
        };
        if connection.is_none() {
            match Connection::open(run.target.addr, &run.target.host).await {
                Ok(c) => connection = Some(c),
                Err(_) => {
                    recorder.failed(Failure::Connect, slot.intended, run.start.elapsed());
                    if let Ok(mut w) = run.workload.lock() {
                        w.on_answer(&planned, false);
                    }
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let sent = run.start.elapsed();
        recorder.sent(planned.kind, slot.intended, sent);
        let body = Bytes::from(std::mem::take(&mut planned.body));
        let outcome = tokio::time::timeout(run.timeout, conn.post_json("/v1/events", body)).await;
        let answered = run.start.elapsed();
        match outcome {
            Ok(Ok((status, bytes))) => {
                recorder.answered(slot.intended, sent, answered, status);
                digest(&run, &planned, status, &bytes, answered);
            }
            Ok(Err(_)) | Err(_) => {
                let failure = if outcome.is_err() {
                    Failure::Timeout
                } else {
                    Failure::Io
                };
                recorder.failed(failure, slot.intended, answered);
                connection = None;
                if let Ok(mut w) = run.workload.lock() {
                    w.on_answer(&planned, false);
                }
            }
        }
    }
    recorder
}

/// Log every agent in, in batches, over one connection. In tierline mode every login must be
/// applied (or a duplicate), else the run would measure a contact centre with nobody in it.
async fn setup(
    target: &Target,
    mode: Mode,
    queues: u32,
    logins: Vec<Planned>,
    timeout: Duration,
) -> Result<u64, LoadgenError> {
    let mut connection = Connection::open(target.addr, &target.host)
        .await
        .map_err(|e| LoadgenError::Setup(e.to_string()))?;
    let mut sent = 0u64;
    for batch in logins.chunks(LOGIN_BATCH) {
        let mut body =
            Vec::with_capacity(batch.iter().map(|p| p.body.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, p) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&p.body);
        }
        body.push(b']');
        let (status, answer) = tokio::time::timeout(
            timeout,
            connection.post_json("/v1/events", Bytes::from(body)),
        )
        .await
        .map_err(|_| {
            LoadgenError::Setup(format!(
                "agent.login batch: no answer within {timeout:?} (--timeout)"
            ))
        })?
        .map_err(|e| LoadgenError::Setup(format!("agent.login batch: {e}")))?;
        sent += batch.len() as u64;
        if mode == Mode::Baseline {
            continue;
        }
        let text = String::from_utf8_lossy(&answer);
        if status != 200 {
            return Err(LoadgenError::Setup(format!(
                "agent.login batch answered {status}: {}",
                text.chars().take(500).collect::<String>()
            )));
        }
        let parsed: Answer = serde_json::from_slice(&answer).map_err(|e| {
            LoadgenError::Setup(format!("agent.login answer is not a result list: {e}"))
        })?;
        // One result per login, in order, under its envelope id: anything else is not a
        // tierline daemon answering (the bare baseline server answers every request alike).
        #[derive(Deserialize)]
        struct EnvelopeId<'a> {
            #[serde(borrow)]
            id: std::borrow::Cow<'a, str>,
        }
        let sent_ids: Vec<String> = batch
            .iter()
            .map(|p| {
                serde_json::from_slice::<EnvelopeId<'_>>(&p.body)
                    .map(|e| e.id.into_owned())
                    .unwrap_or_default()
            })
            .collect();
        let answered_ids: Vec<&str> = parsed.results.iter().map(|r| r.id.as_str()).collect();
        if answered_ids != sent_ids {
            let first_off = sent_ids
                .iter()
                .map(String::as_str)
                .zip(
                    answered_ids
                        .iter()
                        .copied()
                        .chain(std::iter::repeat("(none)")),
                )
                .find(|(sent, got)| sent != got);
            return Err(LoadgenError::Setup(format!(
                "the agent.login batch of {} was answered with {} results that do not match it{}: \
                 is --url a tierline daemon? (--mode baseline drives the bare baseline server)",
                sent_ids.len(),
                answered_ids.len(),
                first_off.map_or_else(String::new, |(sent, got)| format!(
                    " (login `{sent}` answered as `{}`)",
                    got.chars().take(100).collect::<String>()
                )),
            )));
        }
        if let Some(bad) = parsed
            .results
            .iter()
            .find(|r| r.status != "applied" && r.status != "duplicate")
        {
            // The refused result itself, not the start of the whole answer (which is mostly
            // the logins that were applied).
            let why = bad
                .error
                .as_ref()
                .map_or_else(|| "no error given".to_string(), |e| e.to_string());
            return Err(LoadgenError::Setup(format!(
                "agent.login `{}` was {} (are queues q0..q{} in the daemon's config?): {}",
                bad.id,
                bad.status,
                queues.saturating_sub(1),
                why.chars().take(500).collect::<String>()
            )));
        }
    }
    Ok(sent)
}

/// Run the generator against `args.url` and return the report (also written to `--out`).
pub async fn run(args: &LoadgenArgs) -> Result<Report, LoadgenError> {
    if args.connections == 0 {
        return Err(LoadgenError::Connections);
    }
    if args.timeout.is_zero() {
        return Err(LoadgenError::Timeout);
    }
    let schedule = Schedule::new(args.rate, args.duration, args.arrivals, args.seed)?;
    // The report file is opened (created) before the run, so a path that cannot be written is
    // found now, not after minutes of load whose figures would then be lost.
    let out = match &args.out {
        Some(path) => Some((
            path,
            std::fs::File::create(path).map_err(|source| LoadgenError::Write {
                path: path.clone(),
                source,
            })?,
        )),
        None => None,
    };
    let result = measure(args, schedule, out).await;
    if let (Err(LoadgenError::Url { .. } | LoadgenError::Setup(_)), Some(path)) =
        (&result, &args.out)
    {
        // The run never started: leave no empty report behind for a script to take for one.
        let _ = std::fs::remove_file(path);
    }
    result
}

/// `run` once the arguments are checked and the report file is open: the setup, the measured
/// phase, and the report.
async fn measure(
    args: &LoadgenArgs,
    schedule: Schedule,
    mut out: Option<(&PathBuf, std::fs::File)>,
) -> Result<Report, LoadgenError> {
    let target = Target::resolve(&args.url).await?;
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("lg{:x}", nanos % (1 << 40))
    });
    let mut workload = Workload::new(WorkloadSettings {
        run: run_id,
        agents: args.agents,
        queues: args.queues,
        max_live: args.max_live.unwrap_or(args.agents as usize),
        seed: args.seed,
        mix: Mix::default(),
    });
    let setup_events = setup(
        &target,
        args.mode,
        args.queues,
        workload.logins(),
        args.timeout,
    )
    .await?;

    // Open every connection and make its recorder before the clock starts, so the first slots
    // do not pay for it.
    let mut connections = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let connection = Connection::open(target.addr, &target.host)
            .await
            .map_err(|e| LoadgenError::Setup(e.to_string()))?;
        connections.push((connection, Recorder::new()));
    }

    let feed_after = match args.mode {
        Mode::Tierline => feed::current_cursor(&target).await,
        Mode::Baseline => None,
    };

    // The lateness histogram as it stands before the run, so that the report covers the
    // timers fired during the run only.
    let mut warnings = Warnings::default();
    let metrics_before = match &args.metrics_url {
        Some(url) => {
            let page = fetch_metrics(url).await;
            if page.is_none() {
                warnings.add(format!(
                    "--metrics-url {url}: no 200 answer before the run; the timer lateness \
                     will cover the daemon's whole life, not the run"
                ));
            }
            page
        }
        None => None,
    };
    let server_before = args.server_pid.and_then(server_cpu_s);
    if let (Some(pid), None) = (args.server_pid, server_before) {
        warnings.add(format!(
            "--server-pid {pid}: cannot read /proc/{pid}/stat (no such process, or not Linux); \
             server_cpu_s will be null"
        ));
    }
    let cpu_before = process_cpu_s();
    // The clock's zero is set a little ahead, so the slot channel, the sender tasks, the pacer
    // thread and the feed are all running before the first slot is due (made after it, they
    // held up the first slots of every run).
    let start = Instant::now() + START_LEAD;
    let run = Arc::new(Run {
        target: target.clone(),
        mode: args.mode,
        workload: Mutex::new(workload),
        start,
        timeout: args.timeout,
        give_up_at: start + args.duration + args.drain,
    });

    let (stop_feed, feed_stop) = watch::channel(false);
    let feed = (args.mode == Mode::Tierline).then(|| {
        let run = run.clone();
        tokio::spawn(async move {
            feed::follow(
                run.target.clone(),
                &run.workload,
                start,
                feed_after,
                feed_stop,
            )
            .await
        })
    });

    let (slot_tx, slot_rx) = async_channel::bounded::<Slot>(SLOT_QUEUE);
    let mut senders = tokio::task::JoinSet::new();
    for (connection, recorder) in connections {
        senders.spawn(sender(
            run.clone(),
            Some(connection),
            recorder,
            slot_rx.clone(),
        ));
    }
    drop(slot_rx);
    let scheduled = schedule.expected_slots();
    let quantum = args.pace_quantum;
    let pacer = tokio::task::spawn_blocking(move || {
        let mut clock = ThreadClock { start };
        pace(schedule, &mut clock, quantum, |slot| {
            slot_tx.send_blocking(slot).is_ok()
        })
    });

    let pace_summary = pacer.await.unwrap_or_default();
    let mut recorder = Recorder::new();
    while let Some(done) = senders.join_next().await {
        if let Ok(r) = done {
            recorder.merge(&r);
        }
    }
    let _ = stop_feed.send(true);
    if let Some(feed) = feed {
        let _ = feed.await;
    }
    let generator_cpu_s = match (cpu_before, process_cpu_s()) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    let server_cpu_s = match (args.server_pid, server_before) {
        (Some(pid), Some(before)) => match server_cpu_s(pid) {
            Some(after) => Some(after - before),
            None => {
                warnings.add(format!(
                    "--server-pid {pid}: the process was gone by the end of the run; \
                     server_cpu_s is null"
                ));
                None
            }
        },
        _ => None,
    };

    let timer_lateness = match &args.metrics_url {
        Some(url) => match fetch_metrics(url).await {
            None => {
                warnings.add(format!(
                    "--metrics-url {url}: no 200 answer after the run; timer_lateness is null"
                ));
                None
            }
            Some(after) => {
                let lateness = scrape::timer_lateness_between(metrics_before.as_deref(), &after);
                if lateness.is_none() {
                    warnings.add(format!(
                        "--metrics-url {url}: the page has no tierline_timer_lateness_seconds \
                         histogram; timer_lateness is null"
                    ));
                }
                lateness
            }
        },
        None => None,
    };
    let (results, decisions_seen) = match run.workload.lock() {
        Ok(w) => (w.results().clone(), w.decisions_seen().clone()),
        Err(_) => Default::default(),
    };
    let totals = RunTotals {
        setup_events,
        // A Poisson schedule's count is only known once it ran.
        scheduled: match args.arrivals {
            Arrivals::Constant => scheduled,
            Arrivals::Poisson => pace_summary.released,
        },
        released_late: pace_summary.released_late,
        results,
        decisions_seen,
        timer_lateness,
        generator_cpu_s,
        server_cpu_s,
        warnings: warnings.0,
    };
    let settings = RunSettings {
        mode: args.mode.as_str(),
        url: args.url.clone(),
        target_rate: args.rate,
        duration_s: args.duration.as_secs_f64(),
        arrivals: args.arrivals,
        connections: args.connections,
        agents: args.agents,
        queues: args.queues,
        seed: args.seed,
        sustained_p99_ms: args.sustained_p99_ms,
    };
    let report = Report::build(settings, &recorder, totals, args.duration);
    if let Some((path, file)) = &mut out {
        let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
        std::io::Write::write_all(file, &json)
            .and_then(|()| file.sync_all())
            .map_err(|source| {
                // The figures are not lost with the file: they are on stdout.
                let _ = crate::write_stdout(&format!("{}\n", report.summary_line()));
                LoadgenError::Write {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
    }
    Ok(report)
}

/// What a run could not measure as asked: printed on stderr at once, and kept for the report.
#[derive(Default)]
struct Warnings(Vec<String>);

impl Warnings {
    fn add(&mut self, warning: String) {
        crate::report!("loadgen: warning: {warning}");
        self.0.push(warning);
    }
}

/// CPU seconds (user + system) this process has used so far, all threads.
fn process_cpu_s() -> Option<f64> {
    // SAFETY: `getrusage` only writes the struct it is given, which is zero-initialised plain data.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// CPU seconds (user + system) process `pid` has used so far, all its threads, from
/// `/proc/PID/stat`; `None` where that cannot be read (another OS, the process has gone).
fn server_cpu_s(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // SAFETY: `sysconf` only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return None;
    }
    Some(stat_cpu_ticks(&text)? as f64 / hz as f64)
}

/// utime + stime (fields 14 and 15, in clock ticks) of a `/proc/PID/stat` line. The command
/// name (field 2) is in parentheses and may hold spaces and parentheses, so the fields are
/// counted after its last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Fetch a Prometheus page; `None` if unreachable or not a 200.
async fn fetch_metrics(url: &str) -> Option<String> {
    let target = Target::resolve(url).await.ok()?;
    let uri: hyper::Uri = url.parse().ok()?;
    let path = uri.path_and_query().map_or("/metrics", |p| p.as_str());
    let mut connection = Connection::open(target.addr, &target.host).await.ok()?;
    let (status, body) = connection.get(path).await.ok()?;
    if status != 200 {
        return None;
    }
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// The `loadgen` command: run, print one summary line, exit 1 if the run could not happen.
pub fn main(args: LoadgenArgs) -> ExitCode {
    let runtime = match crate::multi_thread_runtime(args.threads.max(1)) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => match crate::write_stdout(&format!("{}\n", report.summary_line())) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Err(e) => {
            crate::report!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_cpu_is_user_plus_system_ticks_of_proc_stat() {
        // A command name with a space and a parenthesis; utime 1234, stime 567.
        let stat = "4242 (tier line) x) S 1 4242 4242 0 -1 4194560 2619 0 0 0 1234 567 0 0 20 0 \
                    5 0 123456 123456789 2345 18446744073709551615";
        assert_eq!(stat_cpu_ticks(stat), Some(1801));
        assert_eq!(stat_cpu_ticks("4242 (tierline) S 1 2"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
        // This process has a stat file on Linux; a pid that cannot exist has none.
        if cfg!(target_os = "linux") {
            assert!(server_cpu_s(std::process::id()).is_some_and(|s| s >= 0.0));
        }
        assert_eq!(server_cpu_s(u32::MAX), None);
    }
}
