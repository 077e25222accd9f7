//! Checking the file as written and resolving it into the config the engine and daemon run on.
//!
//! Owns every rule about what a valid config is (ids unique and known, ladders that start at 0 and
//! climb, no overflow cycles, positive capacities, sane times…) and every default that fills a gap
//! (`[defaults]`, then the built-in values of `QueueConfig::with_defaults` and
//! `ChannelSettings::default_for`). It collects every problem rather than stopping at the first,
//! and it never returns a half-resolved config: any problem ⇒ no config. Queue checks live in
//! `validate/queue.rs`; ids, agents, rules, limits and daemon settings here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use super::daemon::DaemonConfig;
use super::file::{Entry, RawAgent, RawConfig, RawRule, Seconds};
use super::locate::{FieldPath, Locator};
use super::routing::{
    AgentConfig, Channel, ChannelSettings, Limits, Millis, QueueConfig, RoutingConfig, Rule, Tier,
};
use super::ConfigError;
use crate::engine::event::{MAX_ATTRIBUTE_LEN, MAX_ID_LEN};

/// Largest `[server] body_limit_bytes`: half of what one journal record may hold. A config PUT
/// is journaled whole as one record, as a JSON string in which `"`, `\` and line breaks take two
/// bytes, with the routing config it resolved to when that still fits, else alone; the reload
/// measures that record and refuses a config whose text would not fit
/// (`Input::reconfigure_journaled`).
pub const MAX_BODY_LIMIT_BYTES: usize = 16 << 20;

/// `[journal] segment_bytes` bounds: below a megabyte nearly every batch would start a file.
pub const MIN_SEGMENT_BYTES: u64 = 1 << 20;
pub const MAX_SEGMENT_BYTES: u64 = 1 << 40;

/// Largest `[journal] max_batch_delay_ms`: the group-commit window every answer may wait for.
pub const MAX_BATCH_DELAY_MS: u64 = 1000;

/// Largest `[server] max_connections`: Linux's default ceiling on open files per process
/// (`fs.nr_open`); more sockets than that cannot be open at once.
pub const MAX_CONNECTIONS: usize = 1 << 20;

/// Largest `[server] event_queue_depth`: a million commands waiting for the engine is minutes of
/// backlog at any rate it sustains, each holding its request's memory; past that, 503 and a
/// retry serve the client better.
pub const MAX_EVENT_QUEUE_DEPTH: usize = 1 << 20;

/// Largest `[server] decision_log`: every decision kept is a few hundred bytes of memory and of
/// every snapshot, so ten million is gigabytes of both.
pub const MAX_DECISION_LOG: usize = 10_000_000;

/// Largest `[server] idempotency_ids`: room for all of them is reserved at start (≈ 100 bytes of
/// address space an id, 2 bytes at once), so a hundred million is already 10 GB.
pub const MAX_IDEMPOTENCY_IDS: usize = 100_000_000;

/// Largest `[server] workers`: HTTP threads beyond the cores only take turns on them.
pub const MAX_WORKERS: usize = 1024;

/// Whether the API and the metrics listeners would bind the same port (a port of 0 is a fresh
/// one each time, never the same; a wildcard address takes the port on every address).
fn same_listen_address(a: &str, b: &str) -> bool {
    match (
        a.parse::<std::net::SocketAddr>(),
        b.parse::<std::net::SocketAddr>(),
    ) {
        (Ok(a), Ok(b)) => {
            a.port() != 0
                && a.port() == b.port()
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        }
        _ => !a.trim().is_empty() && !a.ends_with(":0") && a.trim() == b.trim(),
    }
}

mod queue;

/// No duration in a contact centre is longer than a year; anything beyond is a units mistake.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// Check and resolve everything. `Err` holds every problem found.
pub(crate) fn resolve(
    raw: &RawConfig,
    loc: &Locator<'_>,
) -> Result<(RoutingConfig, DaemonConfig), Vec<ConfigError>> {
    let mut c = Checker {
        loc,
        errors: Vec::new(),
        unread_channels: HashSet::new(),
    };
    let root = FieldPath::root();

    let mut channels = Channel::ALL.map(ChannelSettings::default_for);
    for (name, rc) in &raw.channels {
        let path = root.key("channels").key(name);
        let Some(channel) = c.channel(name, &path) else {
            continue;
        };
        let settings = &mut channels[channel.index()];
        if let Some(cap) = rc.capacity {
            settings.capacity = c.capacity(cap, &path.key("capacity")).unwrap_or(1);
        }
        if let Some(exclusive) = rc.exclusive {
            settings.exclusive = exclusive;
        }
    }

    let defaults = c.defaults(raw);

    // Ids first, so every reference below can be checked against the complete set.
    let mut queue_ids: HashMap<&str, usize> = HashMap::new();
    let mut known_queues: HashSet<&str> = HashSet::new();
    for (i, entry) in raw.queues.iter().enumerate() {
        let path = root.key("queue").index(i);
        let id = match (&entry.value, &entry.id_hint) {
            (Some(q), _) => match c.required(q.id.as_deref(), entry.is_broken("id"), "id", &path) {
                Some(id) => id,
                None => continue,
            },
            (None, Some(hint)) => {
                known_queues.insert(hint.as_str());
                continue;
            }
            (None, None) => continue,
        };
        known_queues.insert(id);
        if id.trim().is_empty() {
            c.err(&path.key("id"), "a queue needs a non-empty id");
        } else if let Some(&first) = queue_ids.get(id) {
            c.err(
                &path.key("id"),
                format!("duplicate queue id `{id}` (already used by queue[{first}])"),
            );
        } else if c.id_text(id, &path.key("id"), "a queue id") {
            queue_ids.insert(id, i);
        }
    }
    let known = KnownQueues {
        ids: known_queues,
        listed: {
            let mut listed: Vec<&str> = Vec::new();
            for e in &raw.queues {
                let id = e.value.as_ref().and_then(|q| q.id.as_deref());
                if let Some(id) = id.or(e.id_hint.as_deref()) {
                    if !id.trim().is_empty() && !listed.contains(&id) {
                        listed.push(id);
                    }
                }
            }
            listed.join(", ")
        },
    };

    // A queue without an id (reported above) is checked all the same, then left out.
    let queues: Vec<QueueConfig> = raw
        .queues
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.value.as_ref().map(|q| (i, e, q)))
        .filter_map(|(i, e, q)| c.queue(q, e, &root.key("queue").index(i), &defaults, &known))
        .collect();
    c.overflow_cycles(raw, &queues);
    c.target_channels(raw, &queues);

    let agents = c.agents(&raw.agents, &known);
    let rules = c.rules(&raw.rules, &known, &queues);

    let default_queue = raw.routing.default_queue.clone();
    if let Some(q) = &default_queue {
        c.known_queue(q, &root.key("routing").key("default_queue"), &known);
    }
    let limits = c.limits(raw);
    if agents.len() > limits.max_agents {
        c.err(
            &root.key("limits").key("max_agents"),
            format!(
                "the roster has {} agents, more than max_agents = {}: raise it",
                agents.len(),
                limits.max_agents
            ),
        );
    }
    let daemon = c.daemon(raw);

    let routing = RoutingConfig {
        seed: raw.routing.seed.unwrap_or(0),
        channels,
        queues,
        agents,
        rules,
        default_queue,
        limits,
    };
    if c.errors.is_empty() {
        Ok((routing, daemon))
    } else {
        Err(c.errors)
    }
}

/// The queue ids the file defines (including entries too broken to read, when their id could be
/// seen), so a reference is only called unknown when it really is.
struct KnownQueues<'r> {
    ids: HashSet<&'r str>,
    /// For messages: "queues: support, complaints".
    listed: String,
}

/// Invisible characters that change how text reads (bidirectional overrides and marks, zero-width
/// spaces and joiners, the byte-order mark): not control characters, yet as confusing in an id.
fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// `[defaults]` resolved over the built-in defaults.
struct Defaults {
    sla_ms: Millis,
    offer_timeout_ms: Millis,
    wrap_up_ms: Millis,
    short_abandon_ms: Millis,
    reject_delay_ms: Millis,
    busy_delay_ms: Millis,
    no_answer_delay_ms: Millis,
    max_no_answer: u32,
    count_declines: bool,
    escalation_priority_boost: i32,
}

struct Checker<'l, 'a> {
    loc: &'l Locator<'a>,
    errors: Vec<ConfigError>,
    /// Ids of the queues whose `channels` could not all be read (already reported): what they
    /// serve is not known, so no "does not serve …" is derived from the default or a partial
    /// list.
    unread_channels: HashSet<String>,
}

impl Checker<'_, '_> {
    fn err(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.errors.push(self.loc.error(path, message));
    }

    /// Seconds → milliseconds; `positive` refuses 0 as well as negatives.
    fn millis(&mut self, s: Seconds, path: &FieldPath, positive: bool) -> Option<Millis> {
        let Seconds(v) = s;
        let problem = if !v.is_finite() {
            Some("must be a finite number of seconds".to_string())
        } else if v < 0.0 {
            Some(format!(
                "must not be negative (found {} s)",
                crate::config::show_number(v)
            ))
        } else if positive && v == 0.0 {
            Some("must be greater than 0 s".to_string())
        } else if positive && v * 1000.0 < 0.5 {
            Some(format!(
                "{} s is 0 ms: timers count whole milliseconds, so give at least 0.001 s",
                crate::config::show_number(v)
            ))
        } else if v > MAX_SECONDS {
            Some(format!(
                "{} s is too long (at most {MAX_SECONDS} s, one year); is the unit right? \
                 Fields ending in `_s` are seconds",
                crate::config::show_number(v)
            ))
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.err(path, p);
                None
            }
            None => Some((v * 1000.0).round() as Millis),
        }
    }

    /// The queue's own value if set, else the default; a bad value is reported and replaced by the
    /// default so checking can go on.
    fn time(
        &mut self,
        own: Option<Seconds>,
        path: &FieldPath,
        default: Millis,
        positive: bool,
    ) -> Millis {
        own.and_then(|s| self.millis(s, path, positive))
            .unwrap_or(default)
    }

    fn count(&mut self, v: i64, path: &FieldPath, min: i64) -> Option<u64> {
        if v < min {
            let what = if min == 0 {
                "must not be negative".to_string()
            } else {
                format!("must be at least {min}")
            };
            self.err(path, format!("{what} (found {v})"));
            None
        } else {
            Some(v as u64)
        }
    }

    fn capacity(&mut self, v: i64, path: &FieldPath) -> Option<u32> {
        if v < 1 {
            self.err(path, format!("capacity must be at least 1 (found {v})"));
            None
        } else {
            match u32::try_from(v) {
                Ok(c) => Some(c),
                Err(_) => {
                    self.err(path, format!("capacity {v} is too large"));
                    None
                }
            }
        }
    }

    fn channel(&mut self, name: &str, path: &FieldPath) -> Option<Channel> {
        match Channel::from_str(name) {
            Ok(c) => Some(c),
            Err(msg) => {
                self.err(path, msg);
                None
            }
        }
    }

    fn tier(&mut self, t: i64, path: &FieldPath) -> Option<Tier> {
        if t < 1 {
            self.err(
                path,
                format!("tier {t} does not exist; tiers start at 1 (L1, first line)"),
            );
            None
        } else if let Ok(t) = Tier::try_from(t) {
            Some(t)
        } else {
            self.err(
                path,
                format!("tier {t} is too high (at most {})", Tier::MAX),
            );
            None
        }
    }

    /// `host:port` (an IP, `[v6]` or a host name, and a port number), so that `check-config` and
    /// `validate` refuse what `serve` could not bind.
    fn listen_address(&mut self, s: &str, path: &FieldPath, what: &str) {
        if !self.non_empty(s, path, what) {
            return;
        }
        if !crate::config::is_host_port(s) {
            self.err(
                path,
                format!("{what} `{s}` is not host:port (e.g. 127.0.0.1:8080 or [::1]:8080)"),
            );
        }
    }

    /// A subscriber's URL: `http` or `https` with a host, as the delivery client needs.
    fn webhook_url(&mut self, url: &str, path: &FieldPath) {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        // Shown without a user name, password or query (they may be credentials: the message
        // goes to logs and to API answers).
        let shown = crate::config::daemon::redacted_url(url);
        let problem = if rest.is_none() {
            // Not echoed at all: without an http(s) scheme, what looks like a user name and
            // password may not parse as one (`u:secret@host/` has the scheme `u`).
            Some(
                "the url is not an http:// or https:// URL: tierline delivers by POSTing to one"
                    .to_string(),
            )
        } else if rest.is_some_and(|r| r.is_empty() || r.starts_with(['/', '?', '#'])) {
            Some(format!("`{shown}` has no host to deliver to"))
        } else {
            match url.parse::<axum::http::Uri>() {
                Err(e) => Some(format!("the url is not a URL: {e}")),
                Ok(u) if u.host().is_none_or(str::is_empty) => {
                    Some(format!("`{shown}` has no host to deliver to"))
                }
                Ok(_) => None,
            }
        };
        if let Some(p) = problem {
            self.err(path, p);
        }
    }

    fn non_empty(&mut self, s: &str, path: &FieldPath, what: &str) -> bool {
        if s.trim().is_empty() {
            self.err(path, format!("{what} must not be empty"));
            false
        } else {
            true
        }
    }

    /// A queue's or agent's id as the config gives it: at most `MAX_ID_LEN` bytes (an event
    /// naming a longer one is refused), no control characters and no space at either end (a
    /// line break or a stray space is a typo that would make the id differ from what the PBX
    /// sends, and would break the summary's and the errors' one line each). Reports and returns
    /// whether it is fine; emptiness is the caller's.
    fn id_text(&mut self, id: &str, path: &FieldPath, what: &str) -> bool {
        if !self.not_longer(id, MAX_ID_LEN, path, what) {
            return false;
        }
        let problem = if let Some(c) = id.chars().find(|c| c.is_control() || is_format_char(*c)) {
            Some(format!(
                "{what} must not contain control or formatting characters (found U+{:04X} in {id:?})",
                u32::from(c)
            ))
        } else if id.trim() != id {
            Some(format!(
                "{what} must not begin or end with a space ({id:?}): events would have to name it with the space"
            ))
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.err(path, p);
                false
            }
            None => true,
        }
    }

    /// The length limit events have (`engine::event::check_len`): a roster entry over it could
    /// never log in, be dialled as given, or be required.
    /// Reports and returns whether it is short enough.
    fn not_longer(&mut self, s: &str, max: usize, path: &FieldPath, what: &str) -> bool {
        if s.len() > max {
            self.err(
                path,
                format!(
                    "{what} is {} bytes long; at most {max} are accepted, as in events",
                    s.len()
                ),
            );
            return false;
        }
        true
    }

    /// A field a table must have: reported as missing at the table (`path`), as the deserializer
    /// would, unless it was set but could not be read (`broken`, already reported). Required
    /// fields are read as optional so that one that cannot be read does not hide the entry's
    /// other problems.
    pub(super) fn required<'v, V: ?Sized>(
        &mut self,
        value: Option<&'v V>,
        broken: bool,
        field: &str,
        path: &FieldPath,
    ) -> Option<&'v V> {
        if value.is_none() && !broken {
            self.err(path, format!("missing field `{field}`"));
        }
        value
    }

    fn known_queue(&mut self, id: &str, path: &FieldPath, known: &KnownQueues<'_>) -> bool {
        if id.trim().is_empty() {
            self.err(path, "must name a queue (it is empty)");
            false
        } else if known.ids.contains(id) {
            true
        } else {
            let listed = if known.listed.is_empty() {
                "none are defined".to_string()
            } else {
                format!("queues: {}", known.listed)
            };
            self.err(path, format!("unknown queue `{id}` ({listed})"));
            false
        }
    }

    fn agents(&mut self, raw: &[Entry<RawAgent>], known: &KnownQueues<'_>) -> Vec<AgentConfig> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, entry) in raw.iter().enumerate() {
            let Some(a) = &entry.value else { continue };
            let path = FieldPath::root().key("agent").index(i);
            let id = self.required(a.id.as_deref(), entry.is_broken("id"), "id", &path);
            let address = self.required(
                a.address.as_deref(),
                entry.is_broken("address"),
                "address",
                &path,
            );
            if let Some(id) = id {
                if self.non_empty(id, &path.key("id"), "an agent id")
                    && self.id_text(id, &path.key("id"), "an agent id")
                {
                    if let Some(&first) = seen.get(id) {
                        self.err(
                            &path.key("id"),
                            format!("duplicate agent id `{id}` (already used by agent[{first}])"),
                        );
                    } else {
                        seen.insert(id, i);
                    }
                }
            }
            if let Some(address) = address {
                let p = path.key("address");
                self.non_empty(address, &p, "the agent's address");
                self.not_longer(address, MAX_ATTRIBUTE_LEN, &p, "the agent's address");
            }
            for (j, skill) in a.skills.iter().enumerate() {
                let p = path.key("skills").index(j);
                self.not_longer(skill, MAX_ID_LEN, &p, "a skill");
            }
            let mut tiers = BTreeMap::new();
            for (queue, &t) in &a.tiers {
                let p = path.key("tiers").key(queue);
                let queue_ok = self.known_queue(queue, &p, known);
                if let Some(t) = self.tier(t, &p) {
                    if queue_ok {
                        tiers.insert(queue.clone(), t);
                    }
                }
            }
            let mut capacity = BTreeMap::new();
            for (name, &cap) in &a.capacity {
                let p = path.key("capacity").key(name);
                let ch = self.channel(name, &p);
                let cap = self.capacity(cap, &p);
                if let (Some(ch), Some(cap)) = (ch, cap) {
                    capacity.insert(ch, cap);
                }
            }
            // Without an id or address the agent was reported above; the config is refused.
            let (Some(id), Some(address)) = (id, address) else {
                continue;
            };
            out.push(AgentConfig {
                id: id.to_string(),
                address: address.to_string(),
                tiers,
                skills: a.skills.clone(),
                capacity,
            });
        }
        out
    }

    fn rules(
        &mut self,
        raw: &[Entry<RawRule>],
        known: &KnownQueues<'_>,
        queues: &[QueueConfig],
    ) -> Vec<Rule> {
        let mut out = Vec::new();
        for (i, entry) in raw.iter().enumerate() {
            let Some(r) = &entry.value else { continue };
            let path = FieldPath::root().key("rule").index(i);
            let queue = self.required(r.queue.as_deref(), entry.is_broken("queue"), "queue", &path);
            let known_queue = queue.is_some_and(|q| self.known_queue(q, &path.key("queue"), known));
            let channel = r
                .when
                .get("channel")
                .and_then(|ch| self.channel(ch, &path.key("when").key("channel")));
            // A rule for a channel its queue does not serve could never take an arrival (a rule
            // takes only the channels its queue serves): a mistake, refused.
            let target = queues
                .iter()
                .find(|q| Some(q.id.as_str()) == queue)
                .filter(|q| !self.unread_channels.contains(&q.id));
            if let (true, Some(ch), Some(q)) = (known_queue, channel, target) {
                if !q.channels.contains(&ch) {
                    self.err(
                        &path.key("queue"),
                        format!(
                            "queue `{}` does not serve {}, which this rule matches: the rule \
                             would never take a {} arrival (they go on to the next rule)",
                            q.id,
                            ch.as_str(),
                            ch.as_str()
                        ),
                    );
                }
            }
            // What an event's attributes can hold (`engine::event::check_len`): a key or value
            // beyond it, or an empty key, could never match.
            for (key, value) in &r.when {
                let p = path.key("when").key(key);
                if key.is_empty() {
                    self.err(
                        &path.key("when"),
                        "an attribute name must not be empty: no event could match it",
                    );
                }
                self.not_longer(key, MAX_ID_LEN, &p, "an attribute name");
                self.not_longer(value, MAX_ATTRIBUTE_LEN, &p, "an attribute value");
            }
            // Without a queue the rule was reported above; the config is refused.
            let Some(queue) = queue else { continue };
            out.push(Rule {
                when: r.when.clone(),
                queue: queue.to_string(),
                priority: r.priority,
            });
        }
        out
    }

    fn limits(&mut self, raw: &RawConfig) -> Limits {
        let l = &raw.limits;
        let p = FieldPath::root().key("limits");
        let builtin = Limits::default();
        let mut size = |v: Option<i64>, name: &str, min: i64, default: usize| {
            v.and_then(|n| self.count(n, &p.key(name), min))
                .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        Limits {
            max_live_interactions: size(
                l.max_live_interactions,
                "max_live_interactions",
                1,
                builtin.max_live_interactions,
            ),
            retain_finished: size(
                l.retain_finished,
                "retain_finished",
                0,
                builtin.retain_finished,
            ),
            // The first entry (the arrival) is always kept, plus the latest: at least 2.
            max_history: size(l.max_history, "max_history", 2, builtin.max_history),
            max_agents: size(l.max_agents, "max_agents", 1, builtin.max_agents),
        }
    }

    /// A secret comes from `<name>_env` or `<name>_file` under `table`, never both; a file path
    /// must not be empty. (Whether the file can be read is checked when the daemon reads it: at
    /// start, and again on every reload.)
    fn secret_source(
        &mut self,
        table: &FieldPath,
        name: &str,
        env: &Option<String>,
        file: &Option<std::path::PathBuf>,
    ) {
        let env_field = format!("{name}_env");
        let file_field = format!("{name}_file");
        if env.is_some() && file.is_some() {
            self.err(
                &table.key(&file_field),
                format!(
                    "{table}.{env_field} and {table}.{file_field} are both set; \
                     a secret comes from an environment variable or a file, not both"
                ),
            );
        }
        if env.as_ref().is_some_and(|e| e.trim().is_empty()) {
            self.err(
                &table.key(&env_field),
                "must name the environment variable holding the secret (it is empty)",
            );
        }
        if file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            self.err(
                &table.key(&file_field),
                "must be the path of a file holding the secret (it is empty)",
            );
        }
    }

    fn daemon(&mut self, raw: &RawConfig) -> DaemonConfig {
        let root = FieldPath::root();
        let server = root.key("server");
        let (present, missing) = match (&raw.server.tls_cert, &raw.server.tls_key) {
            (Some(_), None) => (Some("tls_cert"), "tls_key"),
            (None, Some(_)) => (Some("tls_key"), "tls_cert"),
            _ => (None, ""),
        };
        if let Some(present) = present {
            self.err(
                &server.key(present),
                format!("HTTPS needs both tls_cert and tls_key; {missing} is missing"),
            );
        }
        self.listen_address(
            &raw.server.listen,
            &server.key("listen"),
            "the listen address",
        );
        self.listen_address(
            &raw.metrics.listen,
            &root.key("metrics").key("listen"),
            "the metrics listen address",
        );
        if same_listen_address(&raw.server.listen, &raw.metrics.listen) {
            self.err(
                &root.key("metrics").key("listen"),
                format!(
                    "`{}` is also server.listen: the API and /metrics need a port each (the \
                     second would fail to start with \"address already in use\")",
                    raw.metrics.listen
                ),
            );
        }
        for (name, value) in [
            ("body_limit_bytes", raw.server.body_limit_bytes as u64),
            ("request_timeout_ms", raw.server.request_timeout_ms),
            ("idle_timeout_ms", raw.server.idle_timeout_ms),
            ("event_queue_depth", raw.server.event_queue_depth as u64),
            ("max_connections", raw.server.max_connections as u64),
            ("decision_log", raw.server.decision_log as u64),
        ] {
            if value == 0 {
                self.err(&server.key(name), "must be at least 1");
            }
        }
        for (name, value, max, why) in [
            (
                "event_queue_depth",
                raw.server.event_queue_depth,
                MAX_EVENT_QUEUE_DEPTH,
                "a deeper command queue is minutes of backlog; answer 503 and let clients retry",
            ),
            (
                "max_connections",
                raw.server.max_connections,
                MAX_CONNECTIONS,
                "the default ceiling on open files per process (fs.nr_open)",
            ),
            (
                "max_feed_readers",
                raw.server.max_feed_readers,
                MAX_CONNECTIONS,
                "each reader holds a connection, and max_connections is at most that",
            ),
            (
                "idempotency_ids",
                raw.server.idempotency_ids,
                MAX_IDEMPOTENCY_IDS,
                "room for every id is reserved at start, about 100 bytes an id",
            ),
            (
                "workers",
                raw.server.workers,
                MAX_WORKERS,
                "more HTTP threads than that only take turns on the cores",
            ),
            (
                "decision_log",
                raw.server.decision_log,
                MAX_DECISION_LOG,
                "every decision kept is a few hundred bytes of memory and of every snapshot",
            ),
        ] {
            if value > max {
                self.err(&server.key(name), format!("must be at most {max}: {why}"));
            }
        }
        if raw.server.body_limit_bytes > MAX_BODY_LIMIT_BYTES {
            self.err(
                &server.key("body_limit_bytes"),
                format!(
                    "must be at most {MAX_BODY_LIMIT_BYTES} (16 MiB): a config PUT is journaled \
                     as one record, and a journal record holds at most {} bytes",
                    crate::journal::frame::MAX_RECORD_BYTES
                ),
            );
        }
        let journal = root.key("journal");
        let j = &raw.journal;
        if j.segment_bytes < MIN_SEGMENT_BYTES || j.segment_bytes > MAX_SEGMENT_BYTES {
            let why = if j.segment_bytes < MIN_SEGMENT_BYTES {
                "a smaller segment rolls to a new file for almost every batch"
            } else {
                "a segment is replayed and pruned whole, so a larger one would hold more journal \
                 than any disk keeps for it"
            };
            self.err(
                &journal.key("segment_bytes"),
                format!(
                    "must be from {MIN_SEGMENT_BYTES} (1 MiB) to {MAX_SEGMENT_BYTES} (1 TiB): \
                     {why}"
                ),
            );
        }
        if j.dir.as_os_str().is_empty() {
            self.err(
                &journal.key("dir"),
                "must be the journal's directory (it is empty); `.` is the working directory",
            );
        }
        if j.max_batch_delay_ms > MAX_BATCH_DELAY_MS {
            self.err(
                &journal.key("max_batch_delay_ms"),
                format!(
                    "must be at most {MAX_BATCH_DELAY_MS}: every answer may wait this long for \
                     its sync"
                ),
            );
        }
        let auth = root.key("auth");
        let a = &raw.auth;
        for (name, env, file) in [
            (
                "webhook_secrets",
                &a.webhook_secrets_env,
                &a.webhook_secrets_file,
            ),
            ("read_tokens", &a.read_tokens_env, &a.read_tokens_file),
            ("admin_tokens", &a.admin_tokens_env, &a.admin_tokens_file),
        ] {
            self.secret_source(&auth, name, env, file);
        }
        let mut subscribers = Vec::new();
        // Names (the URL when unnamed) → the first subscriber using it: a subscriber's name names
        // its ack file, so two under one name would overwrite each other's delivery cursor.
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, entry) in raw.subscribers.iter().enumerate() {
            let Some(s) = &entry.value else { continue };
            let path = root.key("subscriber").index(i);
            let url = self.required(s.url.as_deref(), entry.is_broken("url"), "url", &path);
            if s.name.as_ref().is_some_and(|n| n.trim().is_empty()) {
                self.err(
                    &path.key("name"),
                    "must not be empty: it names the subscriber in logs, metrics and its ack \
                     file (leave it out to use the url)",
                );
            }
            self.secret_source(&path, "secret", &s.secret_env, &s.secret_file);
            for (k, t) in s.types.iter().enumerate() {
                if !crate::engine::DecisionKind::TYPE_NAMES.contains(&t.as_str()) {
                    self.err(
                        &path.key("types").index(k),
                        format!(
                            "`{t}` is not a decision type (one of {}): the subscriber would \
                             never get it",
                            crate::engine::DecisionKind::TYPE_NAMES.join(", ")
                        ),
                    );
                }
            }
            // Without a url the subscriber was reported above; the config is refused.
            let Some(url) = url else { continue };
            let (name, key) = match &s.name {
                Some(name) => (name.as_str(), "name"),
                None => (url, "url"),
            };
            if let Some(&first) = names.get(name) {
                let shown = match &s.name {
                    Some(name) => name.clone(),
                    None => crate::config::daemon::redacted_url(url),
                };
                self.err(
                    &path.key(key),
                    format!(
                        "duplicate subscriber name `{shown}` (already used by subscriber[{first}]): \
                         a subscriber's name (its url when it has none) names the file its \
                         delivery resumes from after a restart, so each needs its own; give \
                         them different `name`s"
                    ),
                );
            } else {
                names.insert(name.to_string(), i);
            }
            self.webhook_url(url, &path.key("url"));
            let resolved = s.resolve(url);
            if resolved.retry_max_ms < resolved.retry_initial_ms {
                // Named where the user wrote the value that does not fit.
                let (key, default) = match s.retry_max_ms {
                    Some(_) => ("retry_max_ms", ""),
                    None => ("retry_initial_ms", ", its default"),
                };
                self.err(
                    &path.key(key),
                    format!(
                        "retry_max_ms ({}{default}) is less than retry_initial_ms ({}): the \
                         longest retry delay cannot be shorter than the first; raise \
                         retry_max_ms or lower retry_initial_ms",
                        resolved.retry_max_ms, resolved.retry_initial_ms
                    ),
                );
            }
            subscribers.push(resolved);
        }
        DaemonConfig {
            server: raw.server.clone(),
            metrics: raw.metrics.clone(),
            journal: raw.journal.clone(),
            auth: raw.auth.clone(),
            subscribers,
            overrides: Default::default(),
        }
    }
}
