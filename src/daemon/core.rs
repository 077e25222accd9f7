//! The deterministic heart of the daemon: the engine plus the idempotency window and the decision
//! log, driven by serializable `Input`s at explicit times.
//!
//! `Core` owns everything whose state must survive a restart, so the durability journal can record
//! the `Input`s and replay them through this same code to rebuild it exactly. It must never do I/O,
//! read a clock, spawn or await: the engine task (`super::task`) does all of that around it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError, DaemonConfig, LoadedConfig, Millis, RoutingConfig};
use crate::engine::{Decision, Engine, EngineError, Event, RequestedState};

use super::decision_log::{
    Cause, DecisionLog, DecisionPage, FeedError, LoggedDecision, DEFAULT_DECISION_LOG,
};
use super::idempotency::{Caused, HashedId, IdempotencyWindow, WindowCapture};
use super::timed_input::decode_replay;
pub use super::timed_input::ReplayInput;

/// One thing that happened to the core, as journaled and replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// An event from `POST /v1/events`, with its envelope id (the idempotency key).
    Event { id: String, event: Event },
    /// Only time passed: fire the timers due by now.
    Advance,
    /// Replace the routing config with this TOML text (file reload, SIGHUP, `PUT /v1/config`,
    /// or a config file changed while the daemon was down).
    Reconfigure {
        source: String,
        origin: String,
        /// What the text resolved to when it was vetted, journaled with it: replay applies this
        /// instead of validating the text again (see `ResolvedConfig`). Absent in records written
        /// before it existed; those are parsed again, as they always were.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolved: Option<Box<ResolvedConfig>>,
    },
    /// An administrator forces an agent's status (`PUT /v1/agents/{id}/state`).
    AgentState {
        agent: String,
        state: RequestedState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Input {
    /// What the decisions this input makes are shown as caused by (timers falling due first are
    /// `Cause::Timer`).
    pub fn cause(&self) -> Cause<'_> {
        match self {
            Input::Event { id, event } => Cause::Event {
                id,
                kind: event.type_name(),
            },
            Input::Advance => Cause::Timer,
            Input::Reconfigure { origin, .. } => Cause::ConfigChange { origin },
            Input::AgentState { agent, .. } => Cause::AgentState { agent },
        }
    }

    /// The config change `loaded` (already parsed and validated) from `origin`, carrying what it
    /// resolved to so that the engine task need not parse it again, and replay never does.
    pub fn reconfigure(loaded: &LoadedConfig, origin: &str) -> Input {
        Input::Reconfigure {
            source: loaded.source.clone(),
            origin: origin.to_string(),
            resolved: Some(Box::new(ResolvedConfig::of(loaded))),
        }
    }

    /// The config change `loaded` as the journal can record it, in one record
    /// (`MAX_RECORD_BYTES`): with what it resolved to (`reconfigure`) when that fits, else its
    /// text alone, which the engine task and replay parse again, as all records were before
    /// `ResolvedConfig` (the resolved config roughly doubles a record, and a config that was
    /// accepted before it must stay accepted). `Err` says why not even the text fits: found
    /// here, before anything changes, not by the journal, where it would fail the engine's
    /// whole batch as an outage that no retry could end.
    pub fn reconfigure_journaled(loaded: &LoadedConfig, origin: &str) -> Result<Input, String> {
        let max = crate::journal::frame::MAX_RECORD_BYTES;
        let full = Input::reconfigure(loaded, origin);
        if journaled_len(&full)? <= max {
            return Ok(full);
        }
        let text_only = Input::Reconfigure {
            source: loaded.source.clone(),
            origin: origin.to_string(),
            resolved: None,
        };
        let len = journaled_len(&text_only)?;
        if len <= max {
            tracing::warn!(
                origin,
                "the config change is journaled as its text only (with its resolved config it \
                 would exceed one journal record): replay parses the text again, so replay it \
                 with this build before upgrading (docs/DURABILITY.md)"
            );
            return Ok(text_only);
        }
        Err(format!(
            "the config is {len} bytes once journaled (its text as a JSON string, where every \", \\ \
             and line break takes two bytes), over the journal's limit of {max} bytes for one \
             record; make it smaller"
        ))
    }
}

/// The bytes `input` takes as a journal record, counted, not written.
fn journaled_len(input: &Input) -> Result<usize, String> {
    /// Counts what serde writes instead of keeping it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let entry = super::task::JournalEntry {
        at: Millis::MAX,
        input,
    };
    serde_json::to_writer(&mut count, &entry)
        .map_err(|e| format!("the config cannot be journaled: {e}"))?;
    Ok(count.0)
}

/// A config change as the build that accepted it resolved it: the routing config (every default
/// filled in) and the one daemon setting the core keeps (`[server] idempotency_ids`, the
/// idempotency window's capacity).
///
/// Journaled beside the TOML text so that replay applies exactly what was applied live. Parsing
/// the text again would not do: a later build may validate more strictly (a new bound) and refuse
/// a change the writing build applied, and everything after it would then replay differently from
/// what was acknowledged. Only the check against the live state (`Engine::reconfigure`: a removed
/// queue with interactions waiting) is made again, and decides as it did then.
///
/// Read back by later builds, so a field added to `RoutingConfig` (or anything in it) needs
/// `#[serde(default)]`; `a_reconfigure_record_of_this_build_stays_readable` pins the format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolvedConfig {
    pub routing: RoutingConfig,
    pub idempotency_ids: usize,
    /// All the daemon settings, when this process parsed the text (a live change): the engine
    /// task takes them from here instead of parsing the text again. Never journaled (replay reads
    /// them from the text, see `Core::reconfigure`) and not compared: they are what the text says.
    #[serde(skip)]
    pub daemon: Option<DaemonConfig>,
}

impl ResolvedConfig {
    pub fn of(loaded: &LoadedConfig) -> ResolvedConfig {
        ResolvedConfig {
            routing: loaded.routing.clone(),
            idempotency_ids: loaded.daemon.server.idempotency_ids,
            daemon: Some(loaded.daemon.clone()),
        }
    }
}

impl ResolvedConfig {
    /// The config in force once this change applies: its routing config and window capacity as
    /// journaled; the other daemon settings as parsed live, or (replay) from the text, and if
    /// this build refuses the text, those `in_force` stay (as `Core::load` does for a snapshot's
    /// text): the routing config and the window, all that the core's state depends on, are in
    /// the record.
    fn loaded(&self, source: &str, origin: &str, in_force: &DaemonConfig) -> LoadedConfig {
        let mut daemon = match &self.daemon {
            Some(daemon) => daemon.clone(),
            None => config::parse(source, origin).map_or_else(|_| in_force.clone(), |l| l.daemon),
        };
        daemon.server.idempotency_ids = self.idempotency_ids;
        LoadedConfig {
            routing: self.routing.clone(),
            daemon,
            source: source.to_string(),
        }
    }
}

impl PartialEq for ResolvedConfig {
    fn eq(&self, other: &ResolvedConfig) -> bool {
        self.routing == other.routing && self.idempotency_ids == other.idempotency_ids
    }
}

/// An input with the time it was applied at: the unit the journal records. Read back by a
/// hand-written `Deserialize` (`super::timed_input`) that skips serde's flatten buffering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimedInput {
    pub at: Millis,
    #[serde(flatten)]
    pub input: Input,
}

/// What became of one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It took effect; these are the decisions it caused.
    Applied(Vec<Decision>),
    /// An event whose id is in the idempotency window: not applied again. Carries what its
    /// first delivery decided, as far as the decision log still holds it.
    Duplicate(FirstDelivery),
    /// The engine refused the event; nothing changed.
    Rejected(EngineError),
    /// The new config was refused (every problem listed); the old one stays in force.
    ConfigRefused(Vec<ConfigError>),
}

/// The decisions the first delivery of a duplicate event caused (the `Applied` decisions it was
/// answered with), as the decision log holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstDelivery {
    /// Those still held, in seq order, each exactly as it was serialized for the first answer
    /// and the decision feed.
    pub decisions: Vec<LoggedDecision>,
    /// Some are missing from `decisions`: the decision log (a bounded ring) no longer holds
    /// them, or the id was restored from a snapshot written before ranges were kept.
    pub incomplete: bool,
}

impl Outcome {
    /// Whether the input changed state (and so must be journaled).
    pub fn is_applied(&self) -> bool {
        matches!(self, Outcome::Applied(_))
    }
}

/// The result of `Core::apply`.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Decisions of timers that fell due before the input took effect (they come first).
    pub fired: Vec<Decision>,
    pub outcome: Outcome,
}

/// The engine with the daemon's replayable state around it. See the module docs.
pub struct Core {
    engine: Engine,
    config: LoadedConfig,
    window: IdempotencyWindow,
    log: DecisionLog,
}

impl Core {
    /// A fresh core at time `now`, keeping the default number of decisions for readers.
    pub fn new(config: LoadedConfig, now: Millis) -> Core {
        Core::with_decision_log(config, now, DEFAULT_DECISION_LOG)
    }

    /// A fresh core keeping the last `log_capacity` decisions for readers.
    pub fn with_decision_log(config: LoadedConfig, now: Millis, log_capacity: usize) -> Core {
        let engine = Engine::new(config.routing.clone(), now);
        let window = IdempotencyWindow::new(config.daemon.server.idempotency_ids);
        let log = DecisionLog::new(log_capacity, engine.next_seq());
        Core {
            engine,
            config,
            window,
            log,
        }
    }

    /// Keep at most `capacity` decisions for readers from now on (the configured bound after a
    /// restart that restored a log saved under another). Returns the bound it replaced, if
    /// different. Readers only: routing never reads the log.
    pub fn set_decision_log(&mut self, capacity: usize) -> Option<usize> {
        let was = self.log.capacity();
        self.log.set_capacity(capacity);
        (was != self.log.capacity()).then_some(was)
    }

    /// Apply one input at `now`: first fire every timer due by `now`, then the input itself.
    /// Every decision made is added to the decision log.
    pub fn apply(&mut self, input: &Input, now: Millis) -> Applied {
        let applied = self.decide(input, now);
        self.log.push(&applied.fired, Cause::Timer);
        if let Outcome::Applied(decisions) = &applied.outcome {
            self.log.push(decisions, input.cause());
        }
        applied
    }

    /// `apply` without logging the decisions (the caller does).
    fn decide(&mut self, input: &Input, now: Millis) -> Applied {
        let fired = self.engine.advance(now);
        let outcome = match input {
            Input::Advance => Outcome::Applied(Vec::new()),
            Input::Event { id, event } => self.apply_event(id, event, now),
            Input::Reconfigure {
                source,
                origin,
                resolved,
            } => self.reconfigure(source, origin, resolved.as_deref(), now),
            Input::AgentState {
                agent,
                state,
                reason,
            } => {
                // An empty reason is none given.
                let reason = match (state, reason.as_deref().filter(|r| !r.is_empty())) {
                    (_, Some(r)) => Some(r.to_string()),
                    (RequestedState::Available, None) => None,
                    (_, None) => Some("admin".to_string()),
                };
                match self
                    .engine
                    .force_state(now, agent, *state, reason.as_deref())
                {
                    Ok(decisions) => Outcome::Applied(decisions),
                    Err(e) => Outcome::Rejected(e),
                }
            }
        };
        Applied { fired, outcome }
    }

    fn apply_event(&mut self, id: &str, event: &Event, now: Millis) -> Outcome {
        if let Some(caused) = self.window.caused(id) {
            return Outcome::Duplicate(self.first_delivery(caused));
        }
        let first = self.engine.next_seq();
        match self.engine.handle(now, event) {
            Ok(decisions) => {
                self.window.insert(id, caused_by(first, &decisions));
                Outcome::Applied(decisions)
            }
            Err(e) => Outcome::Rejected(e),
        }
    }

    /// `apply_event` for replay: the id comes hashed from the decoding thread. The window gets
    /// the same ranges as live (the engine makes the same seqs again); a duplicate's outcome is
    /// dropped, so its decisions are not looked up.
    fn replay_event(&mut self, id: &HashedId, event: &Event, now: Millis) -> Outcome {
        if self.window.contains_hashed(id) {
            return Outcome::Duplicate(FirstDelivery::default());
        }
        let first = self.engine.next_seq();
        match self.engine.handle(now, event) {
            Ok(decisions) => {
                self.window.insert_hashed(id, caused_by(first, &decisions));
                Outcome::Applied(decisions)
            }
            Err(e) => Outcome::Rejected(e),
        }
    }

    /// What the decision log still holds of the decisions `caused`.
    fn first_delivery(&self, caused: Caused) -> FirstDelivery {
        match caused.seqs() {
            Some(seqs) => {
                let (decisions, complete) = self.log.held(seqs);
                FirstDelivery {
                    decisions,
                    incomplete: !complete,
                }
            }
            None => FirstDelivery {
                decisions: Vec::new(),
                incomplete: true,
            },
        }
    }

    /// Apply a config change. With `resolved` (every change this build makes, and the records
    /// it journals) the routing config and window capacity are taken as they are: the text was
    /// validated when the change was made, by the build that made it. Without (records from
    /// before `ResolvedConfig`), the text is parsed and validated now, as it always was. Either
    /// way the engine checks the change against the live state and may refuse it.
    fn reconfigure(
        &mut self,
        source: &str,
        origin: &str,
        resolved: Option<&ResolvedConfig>,
        now: Millis,
    ) -> Outcome {
        let loaded = match resolved {
            Some(resolved) => resolved.loaded(source, origin, &self.config.daemon),
            None => match config::parse(source, origin) {
                Ok(loaded) => loaded,
                Err(errors) => return Outcome::ConfigRefused(errors.0),
            },
        };
        match self.engine.reconfigure(now, loaded.routing.clone()) {
            Ok(decisions) => {
                self.window
                    .set_capacity(loaded.daemon.server.idempotency_ids);
                self.config = loaded;
                Outcome::Applied(decisions)
            }
            Err(refused) => Outcome::ConfigRefused(state_problems(refused.problems, origin)),
        }
    }

    /// What applying `routing` now would be refused for, given the live interactions (a removed
    /// queue they wait in, a channel no longer served); changes nothing.
    pub fn reconfigure_problems(&self, routing: &RoutingConfig, origin: &str) -> Vec<ConfigError> {
        state_problems(self.engine.reconfigure_problems(routing), origin)
    }

    /// When `apply(Input::Advance, …)` is next needed.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.engine.next_deadline()
    }

    /// Up to `limit` logged decisions after seq `after` (`None` = from the oldest held).
    pub fn decisions_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<DecisionPage, FeedError> {
        self.log.after(after, limit)
    }

    /// The seq the next decision will carry.
    pub fn next_seq(&self) -> u64 {
        self.log.next_seq()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// For switching fact recording and taking facts; never for applying events (use `apply`).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The config in force (routing, daemon settings and its TOML source).
    pub fn config(&self) -> &LoadedConfig {
        &self.config
    }

    pub fn idempotency_window(&self) -> &IdempotencyWindow {
        &self.window
    }
}

/// Version of the `Core` snapshot layout (see `Core::save`).
const CORE_SNAPSHOT_VERSION: u32 = 1;
/// Origin named in errors when a snapshot's config text is parsed again.
const SNAPSHOT_ORIGIN: &str = "<journal snapshot>";

/// What a `Core` snapshot holds besides the engine's own snapshot, as read back.
#[derive(Serialize, Deserialize)]
struct CoreSnapshot {
    version: u32,
    /// The config text in force (the engine snapshot holds the routing config itself).
    source: String,
    window_capacity: usize,
    /// Idempotency ids, oldest first.
    window_ids: Vec<Arc<str>>,
    /// The decisions each of `window_ids` caused (`[first seq, count]`, nil when unknown), in
    /// the same order. Absent from snapshots written before they were kept: those ids get
    /// unknown ranges (a duplicate of one is answered without decisions, flagged incomplete).
    #[serde(default)]
    window_caused: Vec<Caused>,
    log_capacity: usize,
    log_next_seq: u64,
    /// The decision ring, oldest first, as the JSON readers were sent.
    decisions: Vec<Arc<str>>,
}

/// `[u32 LE length][MessagePack]`, the head of a `Core` snapshot.
fn encode_header(header: &impl Serialize, out: &mut Vec<u8>) -> Result<(), String> {
    let header = rmp_serde::to_vec_named(header)
        .map_err(|e| format!("cannot encode the daemon state: {e}"))?;
    let len = u32::try_from(header.len())
        .map_err(|_| format!("daemon state of {} bytes is too large", header.len()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&header);
    Ok(())
}

/// The daemon's part of a snapshot as captured on the engine task: the idempotency ids by their
/// shared chunks (a pointer per 4,096 ids, not a reference count per id) and the logged
/// decisions by reference. Encoded later, as a `CoreSnapshot` (same fields, same order).
struct CapturedHeader {
    source: String,
    window_capacity: usize,
    window: WindowCapture,
    log_capacity: usize,
    log_next_seq: u64,
    decisions: Vec<Arc<str>>,
}

/// A sequence serialized from an iterator made on demand (the captured ids, their ranges).
struct SeqOf<F>(F);

impl<F, I> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

impl CapturedHeader {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        /// `CoreSnapshot`'s fields, borrowed.
        #[derive(Serialize)]
        struct Ref<'a, A: Serialize, B: Serialize> {
            version: u32,
            source: &'a str,
            window_capacity: usize,
            window_ids: A,
            window_caused: B,
            log_capacity: usize,
            log_next_seq: u64,
            decisions: &'a [Arc<str>],
        }
        encode_header(
            &Ref {
                version: CORE_SNAPSHOT_VERSION,
                source: &self.source,
                window_capacity: self.window_capacity,
                window_ids: SeqOf(|| self.window.ids()),
                window_caused: SeqOf(|| self.window.caused()),
                log_capacity: self.log_capacity,
                log_next_seq: self.log_next_seq,
                decisions: &self.decisions,
            },
            out,
        )
    }
}

impl Core {
    /// The daemon's part of a snapshot, sharing (not copying) ids and logged decisions.
    fn snapshot_header(&self) -> CapturedHeader {
        CapturedHeader {
            source: self.config.source.clone(),
            window_capacity: self.window.capacity(),
            window: self.window.capture(),
            log_capacity: self.log.capacity(),
            log_next_seq: self.log.next_seq(),
            decisions: self.log.iter().map(|d| d.json.clone()).collect(),
        }
    }

    /// The whole replayable state: `[u32 LE header length][header (MessagePack)][engine snapshot]`.
    pub fn save(&self, out: &mut Vec<u8>) -> Result<(), String> {
        self.snapshot_header().encode(out)?;
        self.engine
            .write_snapshot(out)
            .map_err(|e| format!("cannot write the engine snapshot: {e}"))
    }

    /// `save`, split so that only what must see this exact state runs now: a copy of the
    /// engine's primary state (cheaper than encoding it, and smaller than a clone: no indexes)
    /// and shared references to the ids and decisions. Both are encoded later, off the engine
    /// task, straight into the snapshot file.
    pub fn capture(&self) -> Result<crate::journal::Capture, String> {
        let header = self.snapshot_header();
        let engine = self.engine.capture();
        Ok(crate::journal::Capture::deferred(move |mut out| {
            // The head (ids, decisions) is small next to the engine: encode it, write it, drop
            // it; the engine is encoded straight into the file.
            let mut head = Vec::new();
            header.encode(&mut head)?;
            out.write_all(&head)
                .map_err(|e| format!("cannot write the daemon state: {e}"))?;
            drop(head);
            drop(header);
            engine
                .write_snapshot(&mut out)
                .map_err(|e| format!("cannot write the engine snapshot: {e}"))
        }))
    }

    /// Rebuild a core from `save` output.
    pub fn load(bytes: &[u8]) -> Result<Core, String> {
        let (len, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or("snapshot is shorter than its 4-byte header length")?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(format!(
                "snapshot header says {len} bytes but only {} follow",
                rest.len()
            ));
        }
        let (header, mut engine_bytes) = rest.split_at(len);
        // The version is read on its own first: another version's fields would otherwise fail
        // as a missing or mistyped field, not naming the version.
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let Version { version } = rmp_serde::from_slice(header)
            .map_err(|e| format!("cannot read the daemon state's version: {e}"))?;
        if version != CORE_SNAPSHOT_VERSION {
            return Err(format!(
                "daemon state version {version} is not supported (this build reads version \
                 {CORE_SNAPSHOT_VERSION})"
            ));
        }
        let header: CoreSnapshot = rmp_serde::from_slice(header)
            .map_err(|e| format!("cannot decode the daemon state: {e}"))?;
        let engine = Engine::read_snapshot(&mut engine_bytes)
            .map_err(|e| format!("cannot read the engine snapshot: {e}"))?;
        // The text is what the engine's config was parsed from (it keeps no roster, so the
        // daemon's copy comes from the text); if it no longer parses, the engine's config stands.
        let (routing, daemon) = match config::parse(&header.source, SNAPSHOT_ORIGIN) {
            Ok(c) => (c.routing, c.daemon),
            Err(_) => (engine.config().clone(), Default::default()),
        };
        let config = LoadedConfig {
            routing,
            daemon,
            source: header.source,
        };
        if !header.window_caused.is_empty() && header.window_caused.len() != header.window_ids.len()
        {
            return Err(format!(
                "the snapshot has {} idempotency ids but {} ranges of their decisions",
                header.window_ids.len(),
                header.window_caused.len()
            ));
        }
        let mut window = IdempotencyWindow::new(header.window_capacity);
        for (i, id) in header.window_ids.iter().enumerate() {
            let caused = header
                .window_caused
                .get(i)
                .copied()
                .unwrap_or(Caused::UNKNOWN);
            window.insert(id, caused);
        }
        let mut log = DecisionLog::restored(
            header.log_capacity,
            header.log_next_seq,
            header.decisions.len(),
        );
        for (i, json) in header.decisions.iter().enumerate() {
            let decision: Decision = serde_json::from_str(json)
                .map_err(|e| format!("logged decision {i} cannot be read back: {e}"))?;
            // Keep the JSON exactly as readers were sent it (no second serialization).
            log.push_logged(LoggedDecision {
                seq: decision.seq,
                kind: decision.kind.type_name(),
                json: json.clone(),
            });
        }
        if log.next_seq() != header.log_next_seq {
            return Err(format!(
                "decision log ends at seq {} but the snapshot says the next is {}",
                log.next_seq(),
                header.log_next_seq
            ));
        }
        Ok(Core {
            engine,
            config,
            window,
            log,
        })
    }
}

impl crate::journal::Replay for Core {
    type Input = ReplayInput;

    /// The fast reader of `super::timed_input`, which also hashes an event's id for the window.
    fn decode(payload: &[u8]) -> Result<ReplayInput, String> {
        decode_replay(payload).map_err(|e| e.to_string())
    }

    /// `apply`, except that the decisions are kept unserialized until `replay_finished`: most of
    /// a long journal's decisions leave the bounded log before recovery ends.
    fn replay(&mut self, input: &ReplayInput) {
        let (Applied { fired, outcome }, cause) = match input {
            ReplayInput::Event { at, id, event } => {
                let fired = self.engine.advance(*at);
                let outcome = self.replay_event(id, event, *at);
                let cause = Cause::Event {
                    id: id.as_str(),
                    kind: event.type_name(),
                };
                (Applied { fired, outcome }, cause)
            }
            ReplayInput::Other(timed) => (self.decide(&timed.input, timed.at), timed.input.cause()),
        };
        self.log.push_replayed(fired, Cause::Timer);
        if let Outcome::Applied(decisions) = outcome {
            self.log.push_replayed(decisions, cause);
        }
    }

    fn replay_finished(&mut self) {
        self.log.finish_replay();
    }

    fn save(&self, out: &mut Vec<u8>) -> Result<(), String> {
        Core::save(self, out)
    }

    fn capture(&self) -> Result<crate::journal::Capture, String> {
        Core::capture(self)
    }

    fn load(bytes: &[u8]) -> Result<Core, String> {
        Core::load(bytes)
    }
}

/// The range of `decisions`, which `Engine::handle` made from seq `first` on. They are
/// consecutive (the engine numbers every decision from one counter and returns all it made for
/// the event); were they ever not, the range is unknown rather than wrong.
fn caused_by(first: u64, decisions: &[Decision]) -> Caused {
    let count = decisions.len() as u64;
    let consecutive = match (decisions.first(), decisions.last()) {
        (Some(a), Some(z)) => a.seq == first && z.seq + 1 == first + count,
        _ => true,
    };
    debug_assert!(
        consecutive,
        "an event's decisions are consecutive from {first}"
    );
    if consecutive {
        Caused::new(first, count)
    } else {
        Caused::UNKNOWN
    }
}

/// Problems of a config with the live state, which have no line in the file.
fn state_problems(problems: Vec<crate::engine::StateProblem>, origin: &str) -> Vec<ConfigError> {
    problems
        .into_iter()
        .map(|p| ConfigError {
            file: origin.to_string(),
            line: None,
            column: None,
            field: p.field,
            message: p.message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AgentConfig, DaemonConfig, QueueConfig, RoutingConfig};
    use crate::engine::{DecisionKind, EngineError, RevokeReason};

    const T0: Millis = 1_800_000_000_000;

    fn config() -> LoadedConfig {
        let mut routing = RoutingConfig::empty();
        let mut q = QueueConfig::with_defaults("support");
        q.offer_timeout_ms = 15_000;
        routing.queues.push(q);
        for id in ["a1", "a2"] {
            routing.agents.push(AgentConfig {
                id: id.into(),
                address: format!("sip:{id}@pbx"),
                tiers: [("support".to_string(), 1)].into(),
                skills: vec![],
                capacity: Default::default(),
            });
        }
        let mut daemon = DaemonConfig::default();
        daemon.server.idempotency_ids = 3;
        LoadedConfig {
            routing,
            daemon,
            source: String::new(),
        }
    }

    fn event(id: &str, event: Event) -> Input {
        Input::Event {
            id: id.into(),
            event,
        }
    }

    fn login(agent: &str) -> Event {
        Event::AgentLogin {
            agent: agent.into(),
            address: None,
            tiers: None,
            skills: None,
            capacity: None,
        }
    }

    fn call(id: &str) -> Event {
        Event::voice_call(id, "support")
    }

    fn applied(a: Applied) -> Vec<Decision> {
        match a.outcome {
            Outcome::Applied(d) => d,
            other => panic!("expected applied, got {other:?}"),
        }
    }

    #[test]
    fn a_repeated_event_id_is_a_duplicate_and_changes_nothing() {
        let mut core = Core::new(config(), T0);
        applied(core.apply(&event("e1", login("a1")), T0));
        let offer = applied(core.apply(&event("e2", call("c1")), T0));
        assert!(matches!(offer[0].kind, DecisionKind::Offer { .. }));
        let again = core.apply(&event("e2", call("c1")), T0 + 1);
        let Outcome::Duplicate(first) = again.outcome else {
            panic!("{:?}", again.outcome);
        };
        // Answered with what the first delivery decided, as logged.
        assert!(!first.incomplete);
        assert_eq!(first.decisions.len(), 1);
        assert_eq!(first.decisions[0].seq, offer[0].seq);
        let json = serde_json::to_string(&offer[0]).unwrap();
        assert_eq!(
            *first.decisions[0].json,
            format!(
                r#"{},"cause":{{"kind":"event","id":"e2","type":"interaction.arrived"}}}}"#,
                &json[..json.len() - 1]
            )
        );
        assert_eq!(core.engine().counts().arrived, 1);
        assert_eq!(core.next_seq(), 2);
    }

    fn duplicate(a: Applied) -> FirstDelivery {
        match a.outcome {
            Outcome::Duplicate(first) => first,
            other => panic!("expected duplicate, got {other:?}"),
        }
    }

    fn seqs_of(first: &FirstDelivery) -> Vec<u64> {
        first.decisions.iter().map(|d| d.seq).collect()
    }

    /// An arrival at the moment an earlier offer expires: the expiry (a timer) fires first in
    /// the same step, with the seq just below the arrival's own; the duplicate gets only the
    /// arrival's.
    #[test]
    fn a_duplicate_gets_its_own_decisions_not_the_timers_of_its_step() {
        let mut core = Core::new(config(), T0);
        applied(core.apply(&event("e1", login("a1")), T0));
        applied(core.apply(&event("e2", login("a2")), T0));
        // A delivery that decided nothing (a login with nobody waiting) is answered with
        // nothing, completely.
        let first = duplicate(core.apply(&event("e2", login("a2")), T0));
        assert_eq!(first, FirstDelivery::default());
        applied(core.apply(&event("e3", call("c1")), T0));
        let step = core.apply(&event("e4", call("c2")), T0 + 15_000);
        assert!(
            !step.fired.is_empty(),
            "the offer of c1 expired in the step"
        );
        let own: Vec<u64> = match &step.outcome {
            Outcome::Applied(d) => d.iter().map(|d| d.seq).collect(),
            other => panic!("{other:?}"),
        };
        assert!(!own.is_empty());
        assert_eq!(step.fired.last().unwrap().seq + 1, own[0]);
        let first = duplicate(core.apply(&event("e4", call("c2")), T0 + 15_001));
        assert_eq!(seqs_of(&first), own);
        assert!(!first.incomplete);
    }

    #[test]
    fn a_duplicate_whose_decisions_left_the_log_is_flagged_incomplete() {
        let mut core = Core::with_decision_log(config(), T0, 2);
        applied(core.apply(&event("e1", login("a1")), T0));
        let offer = applied(core.apply(&event("e2", call("c1")), T0));
        assert_eq!(offer.len(), 1);
        // The offer expires and is made again: the log of 2 no longer holds the first offer.
        applied(core.apply(&Input::Advance, T0 + 15_000));
        applied(core.apply(&Input::Advance, T0 + 30_000));
        let first = duplicate(core.apply(&event("e2", call("c1")), T0 + 30_001));
        assert!(first.incomplete);
        assert!(first.decisions.is_empty(), "{:?}", first.decisions);
    }

    #[test]
    fn a_rejected_event_is_not_remembered_so_a_corrected_retry_applies() {
        let mut core = Core::new(config(), T0);
        let refused = core.apply(&event("e1", login("ghost")), T0);
        assert_eq!(
            refused.outcome,
            Outcome::Rejected(EngineError::AgentNeedsAddress {
                agent: "ghost".into()
            })
        );
        assert!(!core.idempotency_window().contains("e1"));
        applied(core.apply(&event("e1", login("a1")), T0));
        assert!(core.idempotency_window().contains("e1"));
    }

    #[test]
    fn the_idempotency_window_is_bounded_by_server_idempotency_ids() {
        let mut core = Core::new(config(), T0);
        for (i, agent) in ["a1", "a2", "a1", "a2"].iter().enumerate() {
            let ev = if i < 2 {
                login(agent)
            } else {
                Event::AgentLogout {
                    agent: (*agent).into(),
                }
            };
            applied(core.apply(&event(&format!("e{i}"), ev), T0));
        }
        assert_eq!(core.idempotency_window().len(), 3);
        assert!(!core.idempotency_window().contains("e0"));
    }

    #[test]
    fn timers_due_before_an_input_fire_first_at_their_own_deadline() {
        let mut core = Core::new(config(), T0);
        applied(core.apply(&event("e1", login("a1")), T0));
        applied(core.apply(&event("e2", call("c1")), T0));
        assert_eq!(core.next_deadline(), Some(T0 + 15_000));
        // Something unrelated arrives 20 s later: the expiry at 15 s fires first.
        let later = core.apply(&event("e3", login("a2")), T0 + 20_000);
        assert_eq!(later.fired[0].at, T0 + 15_000);
        assert!(matches!(
            later.fired[0].kind,
            DecisionKind::OfferRevoked {
                reason: RevokeReason::Expired,
                ..
            }
        ));
        // Every decision made is in the log, gap-free.
        let page = core.decisions_after(Some(0), 100).unwrap();
        let seqs: Vec<u64> = page.decisions.iter().map(|d| d.seq).collect();
        let expected: Vec<u64> = (1..core.next_seq()).collect();
        assert_eq!(seqs, expected);
    }

    #[test]
    fn replaying_the_journaled_inputs_rebuilds_the_same_decisions() {
        let inputs = vec![
            TimedInput {
                at: T0,
                input: event("e1", login("a1")),
            },
            TimedInput {
                at: T0 + 5,
                input: event("e2", call("c1")),
            },
            TimedInput {
                at: T0 + 16_000,
                input: Input::Advance,
            },
            TimedInput {
                at: T0 + 17_000,
                input: Input::AgentState {
                    agent: "a1".into(),
                    state: RequestedState::NotReady,
                    reason: None,
                },
            },
        ];
        // Through JSON, as a journal would store them.
        let json = serde_json::to_string(&inputs).unwrap();
        let replayed: Vec<TimedInput> = serde_json::from_str(&json).unwrap();
        assert_eq!(replayed, inputs);
        let run = |inputs: &[TimedInput]| {
            let mut core = Core::new(config(), T0);
            for i in inputs {
                core.apply(&i.input, i.at);
            }
            let page = core.decisions_after(None, 1000).unwrap();
            page.decisions
                .iter()
                .map(|d| d.json.to_string())
                .collect::<Vec<_>>()
        };
        let first = run(&inputs);
        assert_eq!(
            first.len(),
            4,
            "offer, then its expiry, the call queued again, and the admin's forced state: \
             {first:?}"
        );
        assert!(
            first[3].contains(
                r#""type":"agent_state","agent":"a1","state":"not_ready","reason":"admin""#
            ),
            "{first:?}"
        );
        assert_eq!(first, run(&replayed));
    }

    #[test]
    fn a_saved_core_loads_with_its_queue_idempotency_ids_and_decision_seq() {
        let mut core = Core::new(config(), T0);
        applied(core.apply(&event("e1", login("a1")), T0));
        applied(core.apply(&event("e2", call("c1")), T0));
        applied(core.apply(&event("e3", call("c2")), T0 + 1));
        let mut bytes = Vec::new();
        core.save(&mut bytes).unwrap();
        let mut loaded = Core::load(&bytes).unwrap();
        assert_eq!(loaded.next_seq(), core.next_seq());
        assert_eq!(
            loaded.decisions_after(None, 100).unwrap(),
            core.decisions_after(None, 100).unwrap()
        );
        let ids: Vec<&str> = loaded.idempotency_window().ids().collect();
        assert_eq!(ids, vec!["e1", "e2", "e3"]);
        assert_eq!(loaded.idempotency_window().capacity(), 3);
        // The ranges are in the snapshot: a retry is answered as it was before the save.
        let retried = duplicate(loaded.apply(&event("e3", call("c2")), T0 + 2));
        assert_eq!(
            retried,
            duplicate(core.apply(&event("e3", call("c2")), T0 + 2))
        );
        assert!(!retried.incomplete && !retried.decisions.is_empty());
        // Both continue identically: the offer expiry fires at the same time with the same seq.
        let later = |c: &mut Core| c.apply(&Input::Advance, T0 + 20_000).fired;
        assert_eq!(later(&mut loaded), later(&mut core));
    }

    /// A snapshot written before the ranges were kept: its ids are still duplicates, answered
    /// without decisions and flagged incomplete (never with another event's decisions).
    #[test]
    fn ids_from_a_snapshot_without_ranges_are_duplicates_with_unknown_decisions() {
        let mut core = Core::new(config(), T0);
        applied(core.apply(&event("e1", login("a1")), T0));
        applied(core.apply(&event("e2", call("c1")), T0));
        // The captured head, read back as written, then without its ranges.
        let mut captured = Vec::new();
        core.snapshot_header().encode(&mut captured).unwrap();
        let mut header: CoreSnapshot = rmp_serde::from_slice(&captured[4..]).unwrap();
        header.window_caused.clear();
        let mut bytes = Vec::new();
        encode_header(&header, &mut bytes).unwrap();
        core.engine.write_snapshot(&mut bytes).unwrap();
        let mut loaded = Core::load(&bytes).unwrap();
        let first = duplicate(loaded.apply(&event("e2", call("c1")), T0 + 1));
        assert_eq!(
            first,
            FirstDelivery {
                decisions: Vec::new(),
                incomplete: true
            }
        );
        // Ids applied after the load have their ranges again.
        let offer = applied(loaded.apply(&event("e3", call("c2")), T0 + 2));
        let first = duplicate(loaded.apply(&event("e3", call("c2")), T0 + 3));
        assert!(!first.incomplete);
        assert_eq!(
            seqs_of(&first),
            offer.iter().map(|d| d.seq).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_truncated_core_snapshot_is_refused_with_a_reason() {
        let core = Core::new(config(), T0);
        let mut bytes = Vec::new();
        core.save(&mut bytes).unwrap();
        let err = Core::load(&bytes[..10]).err().unwrap();
        assert!(err.contains("header says"), "{err}");
        let err = Core::load(&bytes[..bytes.len() - 5]).err().unwrap();
        assert!(err.contains("engine snapshot"), "{err}");
    }

    #[test]
    fn a_core_snapshot_of_another_version_is_refused_naming_it() {
        // A later build's daemon state: version 2, with fields this build does not have and
        // without some it needs. The version is what the error must name.
        #[derive(Serialize)]
        struct Later {
            version: u32,
            ring: Vec<u64>,
        }
        let header = rmp_serde::to_vec_named(&Later {
            version: 2,
            ring: vec![1, 2],
        })
        .unwrap();
        let mut bytes = (header.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        let err = Core::load(&bytes).err().unwrap();
        assert_eq!(
            err,
            "daemon state version 2 is not supported (this build reads version 1)"
        );
    }

    #[test]
    fn an_admin_forced_state_carries_the_admin_reason() {
        let mut core = Core::new(config(), T0);
        applied(core.apply(&event("e1", login("a1")), T0));
        applied(core.apply(
            &Input::AgentState {
                agent: "a1".into(),
                state: RequestedState::NotReady,
                reason: None,
            },
            T0 + 1,
        ));
        let agent = core.engine().agent("a1").unwrap();
        assert_eq!(agent.reason.as_deref(), Some("admin"));
        // An empty reason is none given.
        applied(core.apply(
            &Input::AgentState {
                agent: "a1".into(),
                state: RequestedState::Offline,
                reason: Some(String::new()),
            },
            T0 + 1,
        ));
        let agent = core.engine().agent("a1").unwrap();
        assert_eq!(agent.reason.as_deref(), Some("admin"));
        let unknown = core.apply(
            &Input::AgentState {
                agent: "zz".into(),
                state: RequestedState::Available,
                reason: None,
            },
            T0 + 2,
        );
        assert!(matches!(
            unknown.outcome,
            Outcome::Rejected(EngineError::UnknownAgent { .. })
        ));
    }

    #[test]
    fn an_input_serializes_with_its_type_tag() {
        let json = serde_json::to_value(TimedInput {
            at: 5,
            input: event("e1", Event::AgentLogout { agent: "a1".into() }),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at": 5, "input": "event", "id": "e1",
                "event": {"type": "agent.logout", "agent": "a1"}})
        );
    }

    // --- config changes on replay ---

    use crate::journal::Replay;

    /// The config in force before the changes below: queue `support`, agents a1 and a2.
    const BEFORE: &str = "[server]\nidempotency_ids = 3\n\n\
        [[queue]]\nid = \"support\"\noffer_timeout_s = 15\n\n\
        [[queue]]\nid = \"billing\"\n\n\
        [[agent]]\nid = \"a1\"\naddress = \"sip:a1@pbx\"\ntiers = { support = 1 }\n\n\
        [[agent]]\nid = \"a2\"\naddress = \"sip:a2@pbx\"\ntiers = { support = 1 }\n";

    /// `BEFORE` plus a queue `sales` served by a new agent s1, and a larger idempotency window.
    const ADDS_SALES: &str = "[server]\nidempotency_ids = 7\n\n\
        [[queue]]\nid = \"support\"\noffer_timeout_s = 15\n\n\
        [[queue]]\nid = \"billing\"\n\n\
        [[queue]]\nid = \"sales\"\nchannels = [\"voice\", \"chat\"]\n\n\
        [[agent]]\nid = \"a1\"\naddress = \"sip:a1@pbx\"\ntiers = { support = 1 }\n\n\
        [[agent]]\nid = \"a2\"\naddress = \"sip:a2@pbx\"\ntiers = { support = 1 }\n\n\
        [[agent]]\nid = \"s1\"\naddress = \"sip:s1@pbx\"\ntiers = { sales = 1 }\n";

    /// What an older build accepted and this one refuses: `[journal] segment_bytes` is now
    /// bounded below by 1 MiB.
    const OLD_BUILD_ONLY: &str = "\n[journal]\nsegment_bytes = 65536\n";

    fn parsed(text: &str) -> LoadedConfig {
        config::parse(text, "tierline.toml").expect("valid test config")
    }

    /// A journal record as the journal stores it, decoded as recovery decodes it.
    fn record(json: &serde_json::Value) -> ReplayInput {
        <Core as Replay>::decode(json.to_string().as_bytes()).expect("decodes")
    }

    fn arrival(id: &str, interaction: &str, queue: &str) -> Input {
        let mut arrived = call(interaction);
        if let Event::InteractionArrived { queue: q, .. } = &mut arrived {
            *q = Some(queue.into());
        }
        event(id, arrived)
    }

    fn timed(at: Millis, input: Input) -> ReplayInput {
        ReplayInput::from(TimedInput { at, input })
    }

    /// Replay `records` into a core started with `BEFORE`; its decisions as readers see them.
    fn replayed(records: &[ReplayInput]) -> (Core, Vec<String>) {
        let mut core = Core::new(parsed(BEFORE), T0);
        for r in records {
            core.replay(r);
        }
        core.replay_finished();
        let decisions = decision_json(&core);
        (core, decisions)
    }

    fn decision_json(core: &Core) -> Vec<String> {
        let page = core.decisions_after(None, 1000).unwrap();
        page.decisions.iter().map(|d| d.json.to_string()).collect()
    }

    /// Replay rebuilds the window's ranges exactly (the engine makes the same seqs again),
    /// timers firing in an event's step and duplicates included.
    #[test]
    fn replay_rebuilds_the_ranges_of_the_live_window() {
        let inputs = [
            (T0, event("e1", login("a1"))),
            (T0, arrival("e2", "c1", "support")),
            (T0 + 1, arrival("e2", "c1", "support")),
            (T0 + 20_000, event("e3", login("a2"))),
            (T0 + 20_001, arrival("e4", "c2", "support")),
        ];
        let mut live = Core::new(parsed(BEFORE), T0);
        for (at, input) in &inputs {
            live.apply(input, *at);
        }
        let records: Vec<ReplayInput> = inputs
            .iter()
            .map(|(at, input)| timed(*at, input.clone()))
            .collect();
        let (core, decisions) = replayed(&records);
        assert_eq!(decisions, decision_json(&live));
        let window = |c: &Core| -> Vec<(String, Caused)> {
            let w = c.idempotency_window();
            w.ids().map(String::from).zip(w.caused_in_order()).collect()
        };
        assert_eq!(window(&core), window(&live));
        assert!(
            window(&live)
                .iter()
                .any(|(_, c)| c.seqs().is_some_and(|s| !s.is_empty())),
            "{:?}",
            window(&live)
        );
    }

    /// An older build applied a change whose text this build refuses (a bound added since).
    /// The record carries what that build resolved the text to, so replay applies the change
    /// anyway: the queue and agent it added exist, and a call to the new queue is offered to the
    /// new agent, as it was live. Before, replay validated the text again, refused it, dropped the
    /// refusal, and then rejected every event that needed the change: acknowledged calls lost.
    #[test]
    fn a_journaled_reload_that_was_applied_is_applied_again_on_replay() {
        let text = format!("{ADDS_SALES}{OLD_BUILD_ONLY}");
        let refused = config::parse(&text, "tierline.toml").expect_err("refused now");
        assert!(
            refused.0.iter().any(|e| e.field.contains("segment_bytes")),
            "{refused:?}"
        );
        // What the writing build resolved it to: the same config, the bound aside.
        let then = parsed(ADDS_SALES);
        let reconfigure = serde_json::json!({
            "at": T0 + 10, "input": "reconfigure", "source": text, "origin": "tierline.toml",
            "resolved": {"routing": then.routing, "idempotency_ids": 7},
        });
        let records = [
            timed(T0, event("e1", login("a1"))),
            record(&reconfigure),
            timed(T0 + 20, event("e2", login("s1"))),
            timed(T0 + 30, arrival("e3", "c1", "sales")),
        ];
        let (core, decisions) = replayed(&records);
        assert_eq!(
            core.engine().counts().arrived,
            1,
            "the arrival was rejected"
        );
        assert_eq!(decisions.len(), 1, "{decisions:?}");
        assert!(
            decisions[0].contains("\"type\":\"offer\"") && decisions[0].contains("\"s1\""),
            "{decisions:?}"
        );
        assert_eq!(core.idempotency_window().capacity(), 7);
        let config = core.config();
        assert_eq!(
            config.source, text,
            "GET /v1/config serves the text in force"
        );
        assert_eq!(config.routing, then.routing);
        assert_eq!(config.daemon.server.idempotency_ids, 7);
        // The text no longer parses: the other daemon settings in force stay.
        assert_eq!(
            config.daemon.journal.segment_bytes,
            DaemonConfig::default().journal.segment_bytes
        );

        // The same as applying it live (here: the resolved config, as vetted).
        let mut live = Core::new(parsed(BEFORE), T0);
        applied(live.apply(&event("e1", login("a1")), T0));
        applied(live.apply(&Input::reconfigure(&then, "tierline.toml"), T0 + 10));
        applied(live.apply(&event("e2", login("s1")), T0 + 20));
        applied(live.apply(&arrival("e3", "c1", "sales"), T0 + 30));
        assert_eq!(decision_json(&live), decisions);
        assert_eq!(live.engine().config(), core.engine().config());
    }

    /// A change the live state refused when it was journaled (here: it removes `billing`, where
    /// a call waits, without `drain_to`) is refused again on replay, although the record carries
    /// a resolved config: replay decides as the live daemon did.
    #[test]
    fn a_journaled_reload_the_engine_refused_is_refused_again_on_replay() {
        let text = BEFORE.replace("[[queue]]\nid = \"billing\"\n\n", "");
        let without_billing = parsed(&text);
        assert!(without_billing.routing.queue("billing").is_none());
        let inputs = [
            (T0, arrival("e1", "c1", "billing")),
            (
                T0 + 10,
                Input::reconfigure(&without_billing, "tierline.toml"),
            ),
            (T0 + 20, arrival("e2", "c2", "billing")),
        ];
        let mut live = Core::new(parsed(BEFORE), T0);
        let outcomes: Vec<Outcome> = inputs
            .iter()
            .map(|(at, input)| live.apply(input, *at).outcome)
            .collect();
        assert!(
            matches!(&outcomes[1], Outcome::ConfigRefused(p) if p[0].message.contains("billing")),
            "{outcomes:?}"
        );
        assert!(outcomes[2].is_applied(), "{outcomes:?}");

        // Journaled as the daemon journals it, then replayed.
        let records: Vec<ReplayInput> = inputs
            .iter()
            .map(|(at, input)| {
                let json = serde_json::to_value(TimedInput {
                    at: *at,
                    input: input.clone(),
                })
                .unwrap();
                assert_eq!(json["input"] != "reconfigure", json["resolved"].is_null());
                record(&json)
            })
            .collect();
        let (core, decisions) = replayed(&records);
        assert_eq!(decisions, decision_json(&live));
        assert!(core.engine().config().queue("billing").is_some());
        assert_eq!(core.config().source, BEFORE);
        assert_eq!(core.engine().counts().arrived, 2);
        assert_eq!(core.idempotency_window().capacity(), 3);
    }

    /// A record written before records carried the resolved config: its text is parsed and
    /// validated again, as it always was. A text this build accepts is applied; one it refuses
    /// is refused (what the resolved config now prevents, for records written from now on).
    #[test]
    fn an_old_format_reconfigure_record_replays_as_before() {
        let old = |source: &str| {
            let json = format!(
                r#"{{"at":{},"input":"reconfigure","source":{},"origin":"tierline.toml"}}"#,
                T0 + 10,
                serde_json::to_string(source).unwrap()
            );
            <Core as Replay>::decode(json.as_bytes()).expect("decodes")
        };
        let record = old(ADDS_SALES);
        match &record {
            ReplayInput::Other(TimedInput {
                input: Input::Reconfigure { resolved, .. },
                ..
            }) => assert!(resolved.is_none()),
            other => panic!("{other:?}"),
        }
        let after = |record: ReplayInput| {
            replayed(&[
                record,
                timed(T0 + 20, event("e2", login("s1"))),
                timed(T0 + 30, arrival("e3", "c1", "sales")),
            ])
        };
        let (core, decisions) = after(record);
        assert_eq!(decisions.len(), 1, "offered to s1: {decisions:?}");
        assert_eq!(core.config().routing, parsed(ADDS_SALES).routing);
        assert_eq!(core.config().source, ADDS_SALES);
        assert_eq!(core.idempotency_window().capacity(), 7);

        let (core, decisions) = after(old(&format!("{ADDS_SALES}{OLD_BUILD_ONLY}")));
        assert!(decisions.is_empty(), "{decisions:?}");
        assert_eq!(core.config().source, BEFORE);
        assert!(core.engine().config().queue("sales").is_none());
    }
}
