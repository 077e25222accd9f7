//! The queue checks: timings over `[defaults]`, channels, strategy, the escalation ladder,
//! overflow (and overflow cycles), opening hours and `drain_to`.
//!
//! Part of `validate`; like it, collects every problem and never returns a half-checked queue as
//! valid (the caller discards the whole config on any error).

use std::collections::HashMap;
use std::str::FromStr;

use super::{Checker, Defaults, KnownQueues};
use crate::config::file::{Entry, RawConfig, RawOverflow, RawQueue, RawStep};
use crate::config::locate::FieldPath;
use crate::config::routing::{Channel, Millis, Overflow, QueueConfig, Step, Strategy, Tier};
use crate::config::schedule;

impl Checker<'_, '_> {
    pub(super) fn defaults(&mut self, raw: &RawConfig) -> Defaults {
        let builtin = QueueConfig::with_defaults("");
        let d = &raw.defaults;
        let p = FieldPath::root().key("defaults");
        Defaults {
            sla_ms: self.time(d.sla_s, &p.key("sla_s"), builtin.sla_ms, true),
            offer_timeout_ms: self.time(
                d.offer_timeout_s,
                &p.key("offer_timeout_s"),
                builtin.offer_timeout_ms,
                true,
            ),
            wrap_up_ms: self.time(d.wrap_up_s, &p.key("wrap_up_s"), builtin.wrap_up_ms, false),
            short_abandon_ms: self.time(
                d.short_abandon_s,
                &p.key("short_abandon_s"),
                builtin.short_abandon_ms,
                false,
            ),
            reject_delay_ms: self.time(
                d.reject_delay_s,
                &p.key("reject_delay_s"),
                builtin.reject_delay_ms,
                false,
            ),
            busy_delay_ms: self.time(
                d.busy_delay_s,
                &p.key("busy_delay_s"),
                builtin.busy_delay_ms,
                false,
            ),
            no_answer_delay_ms: self.time(
                d.no_answer_delay_s,
                &p.key("no_answer_delay_s"),
                builtin.no_answer_delay_ms,
                false,
            ),
            max_no_answer: d
                .max_no_answer
                .and_then(|n| self.max_no_answer(n, &p.key("max_no_answer")))
                .unwrap_or(builtin.max_no_answer),
            count_declines: d.count_declines.unwrap_or(builtin.count_declines),
            escalation_priority_boost: d
                .escalation_priority_boost
                .unwrap_or(builtin.escalation_priority_boost),
        }
    }

    fn max_no_answer(&mut self, n: i64, path: &FieldPath) -> Option<u32> {
        let n = self.count(n, path, 0)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(path, format!("{n} is too large"));
                None
            }
        }
    }

    pub(super) fn queue(
        &mut self,
        q: &RawQueue,
        entry: &Entry<RawQueue>,
        path: &FieldPath,
        d: &Defaults,
        known: &KnownQueues<'_>,
    ) -> Option<QueueConfig> {
        // Without an id (already reported) the rest of the queue is checked all the same, and no
        // queue comes out of it.
        let id = q.id.as_deref();
        let builtin = QueueConfig::with_defaults(id.unwrap_or(""));

        // Whether every channel the queue serves is known: not when `channels` could not be read
        // (the default stands in for it), is empty, or names an unknown channel.
        let mut channels_read = !entry.is_broken("channels");
        let channels = match &q.channels {
            None => builtin.channels.clone(),
            Some(list) if list.is_empty() => {
                self.err(
                    &path.key("channels"),
                    "a queue must serve at least one channel (voice, chat, email or callback)",
                );
                channels_read = false;
                Vec::new()
            }
            Some(list) => {
                let mut out: Vec<Channel> = Vec::new();
                for (j, name) in list.iter().enumerate() {
                    let p = path.key("channels").index(j);
                    match self.channel(name, &p) {
                        Some(ch) if out.contains(&ch) => {
                            self.err(&p, format!("channel `{ch}` is listed twice"))
                        }
                        Some(ch) => out.push(ch),
                        None => channels_read = false,
                    }
                }
                out
            }
        };
        if let (false, Some(id)) = (channels_read, id) {
            self.unread_channels.insert(id.to_string());
        }

        let strategy = match &q.strategy {
            None => builtin.strategy,
            Some(s) => Strategy::from_str(s).unwrap_or_else(|msg| {
                self.err(&path.key("strategy"), msg);
                Strategy::default()
            }),
        };

        let overflow = q
            .overflow
            .as_ref()
            .and_then(|o| self.overflow(o, &path.key("overflow"), known));
        let max_wait_ms = q
            .max_wait_s
            .and_then(|s| self.millis(s, &path.key("max_wait_s"), false));
        if q.max_wait_s.is_some() && q.overflow.is_none() && !entry.is_broken("overflow") {
            self.err(
                &path.key("max_wait_s"),
                "max_wait_s is set but the queue has no overflow; add \
                 `overflow = { queue = \"…\" }` or `overflow = { target = \"…\" }`",
            );
        }
        // The engine overflows an interaction after `max_wait_s`; without it an overflow never
        // happens. (`[defaults]` carries neither field, so the queue must set both.)
        if q.overflow.is_some() && q.max_wait_s.is_none() && !entry.is_broken("max_wait_s") {
            self.err(
                &path.key("overflow"),
                "overflow is set but the queue has no max_wait_s, so it would never happen; add \
                 `max_wait_s = …` (seconds an interaction waits here before it overflows)",
            );
        }

        let max_waiting = q.max_waiting.and_then(|n| {
            self.count(n, &path.key("max_waiting"), 0)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        });

        let schedule = q.schedule.as_ref().and_then(|s| {
            let p = path.key("schedule");
            self.required(s.tz.as_deref(), entry.is_broken("schedule.tz"), "tz", &p);
            match schedule::resolve(s, &p) {
                Ok(s) => Some(s),
                Err(problems) => {
                    for (p, msg) in problems {
                        self.err(&p, msg);
                    }
                    None
                }
            }
        });
        if let Some(t) = &q.closed_target {
            self.non_empty(t, &path.key("closed_target"), "closed_target");
        }

        let steps = match &q.steps {
            None => builtin.steps.clone(),
            Some(raw_steps) => self.steps(raw_steps, entry, &path.key("steps")),
        };

        if let Some(to) = &q.drain_to {
            let p = path.key("drain_to");
            if self.known_queue(to, &p, known) && Some(to.as_str()) == id {
                self.err(&p, "drain_to must name another queue, not the queue itself");
            }
        }

        let config = QueueConfig {
            id: id.unwrap_or("").to_string(),
            channels,
            strategy,
            sla_ms: self.time(q.sla_s, &path.key("sla_s"), d.sla_ms, true),
            offer_timeout_ms: self.time(
                q.offer_timeout_s,
                &path.key("offer_timeout_s"),
                d.offer_timeout_ms,
                true,
            ),
            wrap_up_ms: self.time(q.wrap_up_s, &path.key("wrap_up_s"), d.wrap_up_ms, false),
            short_abandon_ms: self.time(
                q.short_abandon_s,
                &path.key("short_abandon_s"),
                d.short_abandon_ms,
                false,
            ),
            max_wait_ms,
            overflow,
            max_waiting,
            schedule,
            closed_target: q.closed_target.clone(),
            steps,
            escalation_priority_boost: q
                .escalation_priority_boost
                .unwrap_or(d.escalation_priority_boost),
            reject_delay_ms: self.time(
                q.reject_delay_s,
                &path.key("reject_delay_s"),
                d.reject_delay_ms,
                false,
            ),
            busy_delay_ms: self.time(
                q.busy_delay_s,
                &path.key("busy_delay_s"),
                d.busy_delay_ms,
                false,
            ),
            no_answer_delay_ms: self.time(
                q.no_answer_delay_s,
                &path.key("no_answer_delay_s"),
                d.no_answer_delay_ms,
                false,
            ),
            max_no_answer: q
                .max_no_answer
                .and_then(|n| self.max_no_answer(n, &path.key("max_no_answer")))
                .unwrap_or(d.max_no_answer),
            count_declines: q.count_declines.unwrap_or(d.count_declines),
            drain_to: q.drain_to.clone(),
        };
        id.is_some().then_some(config)
    }

    fn overflow(
        &mut self,
        o: &RawOverflow,
        path: &FieldPath,
        known: &KnownQueues<'_>,
    ) -> Option<Overflow> {
        match (&o.queue, &o.target) {
            (Some(_), Some(_)) => {
                self.err(
                    path,
                    "set either `queue` (another tierline queue) or `target` (a PBX destination), not both",
                );
                None
            }
            (None, None) => {
                self.err(
                    path,
                    "must be `{ queue = \"…\" }` (another tierline queue) or `{ target = \"…\" }` (a PBX destination)",
                );
                None
            }
            (Some(q), None) => {
                let p = path.key("queue");
                // A queue overflowing into itself is reported as a cycle by `overflow_cycles`.
                self.known_queue(q, &p, known)
                    .then(|| Overflow::Queue(q.clone()))
            }
            (None, Some(t)) => self
                .non_empty(t, &path.key("target"), "the overflow target")
                .then(|| Overflow::Target(t.clone())),
        }
    }

    fn steps(&mut self, raw: &[RawStep], entry: &Entry<RawQueue>, path: &FieldPath) -> Vec<Step> {
        if raw.is_empty() {
            self.err(
                path,
                "a queue needs at least one step, e.g. `steps = [{ after_s = 0, tiers = [1] }]`",
            );
            return Vec::new();
        }
        let mut steps: Vec<Step> = Vec::with_capacity(raw.len());
        let mut previous: Option<(f64, Millis)> = None;
        for (k, s) in raw.iter().enumerate() {
            let p = path.index(k);
            // Set but unreadable (already reported): the field, or the whole step.
            let broken = |field: &str| {
                entry.is_broken(&format!("steps[{k}]"))
                    || entry.is_broken(&format!("steps[{k}].{field}"))
            };
            let after_s = self.required(s.after_s.as_ref(), broken("after_s"), "after_s", &p);
            let tiers = self.required(s.tiers.as_deref(), broken("tiers"), "tiers", &p);
            // A step without a readable `after_s` (reported) is neither "the first" nor "the
            // previous" for the others, as for a bad one.
            let after = after_s.and_then(|&a| self.millis(a, &p.key("after_s"), false));
            if let (Some(after), Some(after_s)) = (after, after_s) {
                match previous {
                    // The first step by position: a bad first step does not make the next one
                    // "the first" (`previous` stays unset after it).
                    None if k == 0 && after != 0 => self.err(
                        &p.key("after_s"),
                        format!(
                            "the first step must start at 0 s (found {} s): an interaction needs \
                             some tier to be eligible from the moment it arrives",
                            after_s.0
                        ),
                    ),
                    Some((prev_s, prev)) if after <= prev && after_s.0 > prev_s => self.err(
                        &p.key("after_s"),
                        format!(
                            "steps must be strictly increasing, in whole milliseconds: {} s is \
                             {after} ms, not after the previous step's {prev} ms",
                            after_s.0
                        ),
                    ),
                    Some((prev_s, prev)) if after <= prev => self.err(
                        &p.key("after_s"),
                        format!(
                            "steps must be strictly increasing: {} s is not after the previous \
                             step's {prev_s} s",
                            after_s.0
                        ),
                    ),
                    _ => {}
                }
                previous = Some((after_s.0, after));
            }
            let tiers = tiers.unwrap_or_default();
            if s.tiers.as_ref().is_some_and(Vec::is_empty) {
                self.err(
                    &p.key("tiers"),
                    "a step needs at least one tier, e.g. `tiers = [1, 2]`",
                );
            }
            // A tier listed twice is taken once (not refused as a channel listed twice is: a
            // config that holds one started before, and journals replay such configs).
            let mut tiers: Vec<Tier> = tiers
                .iter()
                .enumerate()
                .filter_map(|(j, &t)| self.tier(t, &p.key("tiers").index(j)))
                .collect();
            tiers.sort_unstable();
            tiers.dedup();
            steps.push(Step {
                after_ms: after.unwrap_or(0),
                tiers,
                priority_boost: s.priority_boost.unwrap_or(0),
                skip_if_no_agents: s.skip_if_no_agents.unwrap_or(false),
            });
        }
        steps
    }

    /// Overflow-to-queue links must not loop: an interaction would bounce forever. Each queue has
    /// at most one overflow, so following the links from every queue finds every cycle.
    pub(super) fn overflow_cycles(&mut self, raw: &RawConfig, queues: &[QueueConfig]) {
        let index: HashMap<&str, usize> = queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.id.as_str(), i))
            .rev()
            .collect();
        let next = |i: usize| match &queues[i].overflow {
            Some(Overflow::Queue(to)) => index.get(to.as_str()).copied(),
            _ => None,
        };
        let mut done = vec![false; queues.len()];
        for start in 0..queues.len() {
            let mut trail: Vec<usize> = Vec::new();
            let mut at = Some(start);
            while let Some(i) = at {
                if done[i] {
                    if let Some(pos) = trail.iter().position(|&t| t == i) {
                        self.report_cycle(raw, queues, &trail[pos..]);
                    }
                    break;
                }
                done[i] = true;
                trail.push(i);
                at = next(i);
            }
        }
    }

    /// An overflow or `drain_to` target must serve every channel of the queue it takes from;
    /// otherwise an interaction would wait where no agent can ever be eligible.
    pub(super) fn target_channels(&mut self, raw: &RawConfig, queues: &[QueueConfig]) {
        // The first queue of a duplicated id is the one references resolve to (as in
        // `overflow_cycles` and `rules`); the duplicate itself is reported elsewhere.
        let mut by_id: HashMap<&str, &QueueConfig> = HashMap::new();
        for q in queues {
            by_id.entry(q.id.as_str()).or_insert(q);
        }
        for q in queues {
            let file_index = raw
                .queues
                .iter()
                .position(|e| {
                    e.value
                        .as_ref()
                        .is_some_and(|r| r.id.as_ref() == Some(&q.id))
                })
                .unwrap_or(0);
            let targets = [
                match &q.overflow {
                    Some(Overflow::Queue(to)) => Some((to, "overflow", Some("queue"))),
                    _ => None,
                },
                q.drain_to.as_ref().map(|to| (to, "drain_to", None)),
            ];
            for (to, field, sub) in targets.into_iter().flatten() {
                let Some(target) = by_id.get(to.as_str()) else {
                    continue;
                };
                // What the target serves is not fully known, or the default stood in for the
                // source's unreadable channels (already reported): no "does not serve" from that.
                // A source with a misspelt channel still has the others checked.
                if self.unread_channels.contains(to)
                    || raw
                        .queues
                        .get(file_index)
                        .is_some_and(|e| e.is_broken("channels"))
                {
                    continue;
                }
                let missing: Vec<&str> = q
                    .channels
                    .iter()
                    .filter(|c| !target.channels.contains(c))
                    .map(|c| c.as_str())
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let mut path = FieldPath::root().key("queue").index(file_index).key(field);
                if let Some(sub) = sub {
                    path = path.key(sub);
                }
                self.err(
                    &path,
                    format!(
                        "queue `{}` does not serve {} but `{}` does: its {} interactions would \
                         wait where no agent can take them",
                        to,
                        missing.join(", "),
                        q.id,
                        missing.join("/")
                    ),
                );
            }
        }
    }

    fn report_cycle(&mut self, raw: &RawConfig, queues: &[QueueConfig], cycle: &[usize]) {
        let Some(first) = (0..cycle.len()).min_by_key(|&k| cycle[k]) else {
            return;
        };
        let mut names: Vec<&str> = (0..cycle.len())
            .map(|k| queues[cycle[(first + k) % cycle.len()]].id.as_str())
            .collect();
        names.push(names[0]);
        // Point at the overflow line of the queue that starts the cycle (its index in the file).
        let id = &queues[cycle[first]].id;
        let file_index = raw
            .queues
            .iter()
            .position(|e| e.value.as_ref().is_some_and(|q| q.id.as_ref() == Some(id)))
            .unwrap_or(0);
        self.err(
            &FieldPath::root()
                .key("queue")
                .index(file_index)
                .key("overflow")
                .key("queue"),
            format!(
                "overflow cycle: {} (an interaction would move between these queues forever)",
                names.join(" → ")
            ),
        );
    }
}
