//! The human summary `tierline check-config` prints: one line per queue.
//!
//! Pure formatting of an already validated config; it never reads files or decides validity.
//!
//! ```text
//! support: channels=voice,chat strategy=longest-idle steps=0s:[1] 30s:[1,2] 60s:[1,2,3]+5 agents=L1=3 L2=2 L3=1
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::routing::{
    AgentConfig, Channel, Millis, Overflow, QueueConfig, RoutingConfig, Step, Tier,
};

/// One line per queue, in config order, each ending in a newline; then a `note:` line for each
/// setting that has no effect (`notes`).
pub fn render(config: &RoutingConfig) -> String {
    let mut out = String::new();
    if config.queues.is_empty() {
        out.push_str("no queues: every arrival would be rejected (`no_route`)\n");
    }
    for q in &config.queues {
        out.push_str(&queue_line(q, &config.agents));
        out.push('\n');
    }
    for note in notes(config) {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Agents named one by one in the notes about one channel's capacity overrides; beyond this many,
/// one note counts them and names the first few.
pub const AGENT_NOTES_LISTED: usize = 5;

/// Settings a valid config holds that can have no effect, each named by where it is set:
/// a capacity above 1 on an exclusive channel (an agent holding one exclusive interaction is
/// offered nothing else, so it never holds a second), a `closed_target` on a queue without
/// a schedule (never closed), and roster agents at a tier no step offers (reached only by
/// escalation; `tiers_no_step_offers`). Legal, so configs that hold them still start;
/// `check-config` prints them, the daemon logs them, and the config endpoints return them. Agents' overrides
/// are named one by one up to `AGENT_NOTES_LISTED` per channel, and counted in one note beyond.
pub fn notes(config: &RoutingConfig) -> Vec<String> {
    let mut notes = Vec::new();
    for channel in Channel::ALL {
        let settings = &config.channels[channel.index()];
        if settings.exclusive && settings.capacity > 1 {
            // Made exclusive with no capacity line, it is the channel's default that does
            // nothing: say so, rather than quote a setting the file does not have.
            let setting = if settings.capacity
                == super::routing::ChannelSettings::default_for(channel).capacity
            {
                format!(
                    "channels.{channel}.capacity (the default, {}) has no effect",
                    settings.capacity
                )
            } else {
                format!(
                    "channels.{channel}.capacity = {} has no effect",
                    settings.capacity
                )
            };
            notes.push(format!(
                "{setting}: {channel} is exclusive, so an agent holding one {channel} \
                 interaction is offered nothing else"
            ));
        }
    }
    for channel in Channel::ALL {
        if !config.channels[channel.index()].exclusive {
            continue;
        }
        let overrides: Vec<(&str, u32)> = config
            .agents
            .iter()
            .filter_map(|a| Some((a.id.as_str(), *a.capacity.get(&channel)?)))
            .filter(|&(_, capacity)| capacity > 1)
            .collect();
        if overrides.len() <= AGENT_NOTES_LISTED {
            for (id, capacity) in overrides {
                notes.push(format!(
                    "agent `{id}`: capacity.{channel} = {capacity} has no effect: {channel} is \
                     exclusive, so the agent never holds a second one"
                ));
            }
        } else {
            // One note for the lot: a roster of thousands would otherwise print (and log at
            // every reload) a line per agent.
            let named: Vec<String> = overrides
                .iter()
                .map(|(id, capacity)| format!("`{id}` ({capacity})"))
                .collect();
            notes.push(format!(
                "{} agents: capacity.{channel} above 1 has no effect: {channel} is exclusive, \
                 so an agent never holds a second one ({})",
                overrides.len(),
                first_few(&named)
            ));
        }
    }
    notes.extend(tiers_no_step_offers(config));
    notes.extend(steps_no_roster_agent_takes(config));
    notes.extend(control_characters(config));
    for q in &config.queues {
        if let (Some(target), None) = (&q.closed_target, &q.schedule) {
            notes.push(format!(
                "queue `{}`: closed_target = \"{target}\" has no effect: the queue has no \
                 schedule, so it is never closed",
                q.id
            ));
        }
        let targets = [
            ("closed_target", q.closed_target.as_deref()),
            (
                "overflow target",
                match &q.overflow {
                    Some(crate::config::Overflow::Target(t)) => Some(t.as_str()),
                    _ => None,
                },
            ),
        ];
        // Notes, not errors: configs holding such a target ran before, and journals replay them.
        for (what, target) in targets {
            let Some(target) = target else { continue };
            if let Some(c) = target.chars().find(|c| c.is_control()) {
                notes.push(format!(
                    "queue `{}`: the {what} contains a control character (U+{:04X}): it is \
                     handed to the PBX as it is, where a line break ends a SIP header or a JSON \
                     line",
                    q.id, c as u32
                ));
            }
            if target.len() > crate::engine::event::MAX_ATTRIBUTE_LEN {
                notes.push(format!(
                    "queue `{}`: the {what} is {} bytes long, more than the {} an agent's \
                     address may have: a PBX may refuse or cut it",
                    q.id,
                    target.len(),
                    crate::engine::event::MAX_ATTRIBUTE_LEN
                ));
            }
        }
        notes.extend(ladder_notes(q));
    }
    notes.extend(rule_notes(config));
    notes
}

/// Roster addresses and skills, and rules' attribute names, holding a control character: events
/// refuse such values (`invalid_value`), so a skill can never be required, a rule's `when` key
/// never matches, and the agent's own login with that address is refused. Notes, not errors,
/// as for targets: configs holding them ran before, and journals replay them.
fn control_characters(config: &RoutingConfig) -> Vec<String> {
    let control = |s: &str| s.chars().find(|c| c.is_control()).map(|c| c as u32);
    let mut notes = Vec::new();
    // A roster converted with Windows line endings puts a `\r` in every address: the first
    // few named, the rest counted, as for the other per-agent notes.
    let with_control: Vec<&str> = config
        .agents
        .iter()
        .filter(|a| control(&a.address).is_some() || a.skills.iter().any(|s| control(s).is_some()))
        .map(|a| a.id.as_str())
        .collect();
    if with_control.len() > AGENT_NOTES_LISTED {
        let named: Vec<String> = with_control.iter().map(|a| format!("`{a}`")).collect();
        notes.push(format!(
            "{} agents: an address or skill contains a control character: such an address is \
             handed to the PBX as it is (a login giving it is refused), and no event can \
             require such a skill ({})",
            with_control.len(),
            first_few(&named)
        ));
    } else {
        for a in &config.agents {
            if let Some(c) = control(&a.address) {
                notes.push(format!(
                    "agent `{}`: the address contains a control character (U+{c:04X}): it is \
                     handed to the PBX as it is, and a login giving the same address is refused",
                    a.id
                ));
            }
            for skill in &a.skills {
                if let Some(c) = control(skill) {
                    notes.push(format!(
                        "agent `{}`: skill {skill:?} contains a control character (U+{c:04X}): \
                         no event can require it (events refuse such skills)",
                        a.id
                    ));
                }
            }
        }
    }
    for (k, r) in config.rules.iter().enumerate() {
        for key in r.when.keys() {
            if let Some(c) = control(key) {
                notes.push(format!(
                    "rule[{k}]: attribute name {key:?} contains a control character \
                     (U+{c:04X}): it never matches (events refuse such attribute names)"
                ));
            }
        }
    }
    notes
}

/// A queue's settings that leave part of it unused: steps its own overflow never lets a call
/// reach, `skip_if_no_agents` on the last step (there is no step to move on to), a schedule
/// with no open hours (every arrival rejected `closed`).
fn ladder_notes(q: &QueueConfig) -> Vec<String> {
    let mut notes = Vec::new();
    if let (Some(max_wait), Some(_)) = (q.max_wait_ms, &q.overflow) {
        // A step is reached by its time before the overflow, or at once from the step before
        // it when that one is reached and has `skip_if_no_agents` (nobody of its tiers there).
        let mut reachable = Vec::with_capacity(q.steps.len());
        for (k, s) in q.steps.iter().enumerate() {
            let skipped_into = k > 0 && reachable[k - 1] && q.steps[k - 1].skip_if_no_agents;
            // Step 0 is entered on entry, even with `max_wait_s = 0`.
            reachable.push(k == 0 || s.after_ms < max_wait || skipped_into);
        }
        let never: Vec<String> = q
            .steps
            .iter()
            .enumerate()
            .filter(|&(k, _)| !reachable[k])
            .map(|(k, s)| format!("steps[{k}] (at {})", seconds(s.after_ms)))
            .collect();
        if !never.is_empty() {
            notes.push(format!(
                "queue `{}`: {} never reached: the queue overflows at max_wait_s = {} first",
                q.id,
                never.join(", ") + if never.len() == 1 { " is" } else { " are" },
                seconds(max_wait)
            ));
        }
    }
    if q.steps.last().is_some_and(|s| s.skip_if_no_agents) {
        notes.push(format!(
            "queue `{}`: steps[{}].skip_if_no_agents has no effect: it is the last step, so \
             there is no step to move on to",
            q.id,
            q.steps.len() - 1
        ));
    }
    if q.schedule
        .as_ref()
        .is_some_and(|s| s.open.iter().all(Vec::is_empty))
    {
        notes.push(format!(
            "queue `{}`: its schedule has no open hours: every arrival is rejected `closed`",
            q.id
        ));
    }
    notes
}

/// Rules that can never match: those after one with an empty `when` (which matches every
/// arrival) whose queue serves every channel (a rule takes only the channels its queue serves;
/// the others go on to the next rule).
fn rule_notes(config: &RoutingConfig) -> Vec<String> {
    let mut notes = Vec::new();
    let takes_all = |r: &crate::config::Rule| {
        r.when.is_empty()
            && config
                .queue(&r.queue)
                .is_some_and(|q| Channel::ALL.iter().all(|c| q.channels.contains(c)))
    };
    if let Some(k) = config.rules.iter().position(takes_all) {
        if k + 1 < config.rules.len() {
            let after = match config.rules.len() - 1 {
                last if last == k + 1 => format!("rule[{last}] after it is"),
                last => format!("rule[{}] to rule[{last}] after it are", k + 1),
            };
            notes.push(format!(
                "rule[{k}] has an empty `when` and its queue serves every channel, so it takes \
                 every arrival: {after} never reached"
            ));
        }
    }
    notes
}

/// The first `AGENT_NOTES_LISTED` of `named`, then how many more: "`a0`, `a1`, … and 3 more".
fn first_few(named: &[String]) -> String {
    let shown = named[..named.len().min(AGENT_NOTES_LISTED)].join(", ");
    match named.len().saturating_sub(AGENT_NOTES_LISTED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// Roster agents at a tier no step of the queue's ladder offers: they take that queue's work
/// only when an agent escalates it (`interaction.escalated` with `min_tier` at most their tier,
/// which bypasses the ladder), a design for experts kept for escalations, or a typo (`4` on a
/// ladder that ends at 3). One note per queue and tier, naming up to `AGENT_NOTES_LISTED`
/// agents and counting the rest.
fn tiers_no_step_offers(config: &RoutingConfig) -> Vec<String> {
    // Keyed by the queue's place in the file, so the notes follow the file's order (as the
    // summary lines do); a queue id → place table keeps the pass linear in the roster.
    let place: std::collections::HashMap<&str, usize> = config
        .queues
        .iter()
        .enumerate()
        .map(|(i, q)| (q.id.as_str(), i))
        .collect();
    let mut unoffered: std::collections::BTreeMap<(usize, Tier), Vec<&str>> = Default::default();
    for a in &config.agents {
        for (q, &tier) in &a.tiers {
            let Some(&i) = place.get(q.as_str()) else {
                continue;
            };
            if !config.queues[i].offers_tier(tier) {
                unoffered.entry((i, tier)).or_default().push(&a.id);
            }
        }
    }
    unoffered
        .into_iter()
        .map(|((i, tier), agents)| {
            let queue = &config.queues[i];
            let q = &queue.id;
            let mut offered: Vec<Tier> = queue
                .steps
                .iter()
                .flat_map(|s| s.tiers.iter().copied())
                .collect();
            offered.sort_unstable();
            offered.dedup();
            let offered = match offered.as_slice() {
                [one] => format!("tier {one}"),
                many => format!("tiers {}", tier_list(many.iter())),
            };
            let named: Vec<String> = agents.iter().map(|id| format!("`{id}`")).collect();
            let who = match agents.len() {
                1 => format!("agent {}", named.join("")),
                n if n <= AGENT_NOTES_LISTED => format!("agents {}", named.join(", ")),
                n => format!("{n} agents ({})", first_few(&named)),
            };
            format!(
                "{who}: tier {tier} in queue `{q}`, which no step of its ladder offers (it offers \
                 {offered}): offered that queue's work only when a connected call in it is \
                 escalated with min_tier ≤ {tier}"
            )
        })
        .collect()
}

/// `1, 2, 3`.
fn tier_list<'a>(tiers: impl Iterator<Item = &'a Tier>) -> String {
    tiers.map(Tier::to_string).collect::<Vec<_>>().join(", ")
}

/// Ladder steps of a queue with roster agents where none of them has an allowed tier (and the
/// step does not pass itself over when nobody is logged in): a call reaching the step can be
/// taken only by an agent logging in with such a tier (`tiers = [3]` with no L3 in the roster
/// takes the queue away from its L1 and L2 agents from then on). A queue staffed only by
/// logins gets no note: the roster says nothing about it.
fn steps_no_roster_agent_takes(config: &RoutingConfig) -> Vec<String> {
    // The tiers the roster holds in each queue, in one pass over the roster.
    let mut held: std::collections::HashMap<&str, std::collections::BTreeSet<Tier>> =
        Default::default();
    for a in &config.agents {
        for (q, &tier) in &a.tiers {
            held.entry(q.as_str()).or_default().insert(tier);
        }
    }
    let mut notes = Vec::new();
    for q in &config.queues {
        let Some(held) = held.get(q.id.as_str()) else {
            continue;
        };
        for (n, step) in q.steps.iter().enumerate() {
            if step.skip_if_no_agents || step.tiers.iter().any(|t| held.contains(t)) {
                continue;
            }
            notes.push(format!(
                "queue `{}`: step {n} (after {}s) offers tiers [{}], which no roster agent has in \
                 this queue (they have tiers {}): a call that reaches it can be taken only by an \
                 agent logging in with such a tier",
                q.id,
                step.after_ms as f64 / 1000.0,
                tier_list(step.tiers.iter()),
                tier_list(held.iter())
            ));
        }
    }
    notes
}

/// `support: channels=voice,chat strategy=longest-idle steps=0s:[1] 30s:[1,2] agents=L1=3 L2=2`,
/// plus `max_wait=600s→sip:voicemail@pbx` when the queue overflows and `schedule=Europe/London`
/// when it has opening hours.
pub fn queue_line(q: &QueueConfig, roster: &[AgentConfig]) -> String {
    let channels: Vec<&str> = q.channels.iter().map(|c| c.as_str()).collect();
    let mut line = format!(
        "{}: channels={} strategy={} steps={} agents={}",
        q.id,
        channels.join(","),
        q.strategy.as_str(),
        steps(&q.steps),
        agents_per_tier(&q.id, roster),
    );
    if let (Some(max_wait), Some(overflow)) = (q.max_wait_ms, &q.overflow) {
        let to = match overflow {
            Overflow::Queue(id) => format!("queue:{id}"),
            Overflow::Target(t) => t.clone(),
        };
        let _ = write!(line, " max_wait={}→{to}", seconds(max_wait));
    }
    if let Some(s) = &q.schedule {
        let _ = write!(line, " schedule={}", s.tz.name());
        if s.open.iter().all(Vec::is_empty) {
            // Legal (a queue kept closed, every arrival `rejected` `closed`), but rarely meant.
            line.push_str(" (never open)");
        }
    }
    line
}

/// `0s:[1] 30s:[1,2] 60s:[1,2,3]+5`; a step that is skipped when nobody of its tiers is logged in
/// is marked `?`.
pub fn steps(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| {
            let tiers: Vec<String> = s.tiers.iter().map(Tier::to_string).collect();
            let mut out = format!("{}:[{}]", seconds(s.after_ms), tiers.join(","));
            if s.priority_boost > 0 {
                let _ = write!(out, "+{}", s.priority_boost);
            } else if s.priority_boost < 0 {
                let _ = write!(out, "{}", s.priority_boost);
            }
            if s.skip_if_no_agents {
                out.push('?');
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `L1=3 L2=2 L3=1` from the roster (agents that log in later are not counted); `none` if the
/// roster has nobody for the queue.
pub fn agents_per_tier(queue: &str, roster: &[AgentConfig]) -> String {
    let mut per_tier: BTreeMap<Tier, usize> = BTreeMap::new();
    for a in roster {
        if let Some(&t) = a.tiers.get(queue) {
            *per_tier.entry(t).or_default() += 1;
        }
    }
    if per_tier.is_empty() {
        return "none".to_string();
    }
    per_tier
        .iter()
        .map(|(t, n)| format!("L{t}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `30000` → `30s`, `200` → `0.2s`.
fn seconds(ms: Millis) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(after_ms: Millis, tiers: &[Tier], boost: i32) -> Step {
        Step::new(after_ms, tiers).boosted(boost)
    }

    /// A rule with an empty `when` hides the rules after it only when its queue serves every
    /// channel: one for a voice-only queue passes the other channels on.
    #[test]
    fn rules_after_a_catch_all_are_noted_only_when_it_takes_every_channel() {
        let mut config = RoutingConfig::empty();
        config.queues = vec![QueueConfig::with_defaults("voice_only")];
        let rule = |queue: &str, when: &[(&str, &str)]| crate::config::Rule {
            when: when
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            queue: queue.into(),
            priority: None,
        };
        config.rules = vec![rule("voice_only", &[]), rule("voice_only", &[("x", "y")])];
        assert_eq!(rule_notes(&config), Vec::<String>::new());
        config.queues[0].channels = Channel::ALL.to_vec();
        assert_eq!(
            rule_notes(&config),
            ["rule[0] has an empty `when` and its queue serves every channel, so it takes every \
              arrival: rule[1] after it is never reached"]
        );
    }

    fn agent(id: &str, tier: Tier) -> AgentConfig {
        AgentConfig {
            id: id.into(),
            address: format!("sip:{id}@pbx"),
            tiers: [("support".to_string(), tier)].into(),
            skills: vec![],
            capacity: BTreeMap::new(),
        }
    }

    /// A step whose tiers no roster agent of the queue has gets a note (from then on the
    /// roster's agents cannot take the call); one that passes itself over, one an agent has,
    /// and a queue staffed by logins only get none.
    #[test]
    fn a_step_no_roster_agent_can_take_is_noted() {
        let mut config = RoutingConfig::empty();
        let mut support = QueueConfig::with_defaults("support");
        let mut skipping = step(90_000, &[4], 0);
        skipping.skip_if_no_agents = true;
        support.steps = vec![
            step(0, &[1], 0),
            step(30_000, &[1, 2], 0),
            step(60_000, &[3], 0),
            skipping,
        ];
        let mut by_login = QueueConfig::with_defaults("by_login");
        by_login.steps = vec![step(0, &[5], 0)];
        config.queues = vec![support, by_login];
        config.agents = vec![agent("a1", 1), agent("a2", 2)];
        let noted: Vec<String> = notes(&config)
            .into_iter()
            .filter(|n| n.contains("no roster agent"))
            .collect();
        assert_eq!(
            noted,
            vec![
                "queue `support`: step 2 (after 60s) offers tiers [3], which no roster agent has \
                 in this queue (they have tiers 1, 2): a call that reaches it can be taken only \
                 by an agent logging in with such a tier"
                    .to_string()
            ]
        );
    }

    /// Agents at a tier no step offers get one note per queue and tier (a typo, or experts kept
    /// for escalations), naming up to `AGENT_NOTES_LISTED` and counting the rest; a tier the
    /// ladder offers, or a queue the config does not have (validation's business), none.
    #[test]
    fn agents_at_a_tier_no_step_offers_get_one_note_per_queue_and_tier() {
        let mut config = RoutingConfig::empty();
        let mut support = QueueConfig::with_defaults("support");
        support.steps = vec![step(0, &[1], 0), step(30_000, &[1, 2], 0)];
        config.queues = vec![support];
        let mut agents: Vec<AgentConfig> = (0..8).map(|k| agent(&format!("e{k}"), 4)).collect();
        agents.push(agent("a1", 1));
        agents.push(agent("a2", 2));
        agents.push(agent("x9", 9));
        let mut elsewhere = agent("o1", 1);
        elsewhere.tiers = [("other".to_string(), 7)].into();
        agents.push(elsewhere);
        config.agents = agents;
        assert_eq!(
            notes(&config),
            vec![
                "8 agents (`e0`, `e1`, `e2`, `e3`, `e4` and 3 more): tier 4 in queue `support`, \
                 which no step of its ladder offers (it offers tiers 1, 2): offered that queue's \
                 work only when a connected call in it is escalated with min_tier ≤ 4"
                    .to_string(),
                "agent `x9`: tier 9 in queue `support`, which no step of its ladder offers (it \
                 offers tiers 1, 2): offered that queue's work only when a connected call in it \
                 is escalated with min_tier ≤ 9"
                    .to_string(),
            ]
        );
        // In the file's queue order, not by id: `zeta` (first in the file) before `support`.
        let mut zeta = QueueConfig::with_defaults("zeta");
        zeta.steps = vec![step(0, &[1], 0)];
        config.queues.insert(0, zeta);
        let mut z = agent("z3", 3);
        z.tiers = [("zeta".to_string(), 3)].into();
        config.agents.push(z);
        // (`zeta`'s step 0 also gets the note that no roster agent can take it: the last.)
        let ordered: Vec<String> = notes(&config)
            .into_iter()
            .filter(|n| !n.contains("no roster agent"))
            .collect();
        assert_eq!(ordered.len(), 3, "{ordered:?}");
        assert!(
            ordered[0].starts_with("agent `z3`: tier 3 in queue `zeta`")
                && ordered[0].contains("(it offers tier 1)"),
            "{ordered:?}"
        );
    }

    /// Values events refuse for a control character, given in the config: noted.
    #[test]
    fn control_characters_in_roster_values_and_rule_keys_are_noted() {
        let mut config = RoutingConfig::empty();
        let mut a = agent("a1", 1);
        a.address = "sip:a1@pbx\r\n".into();
        a.skills = vec!["en".into(), "f\tr".into()];
        config.agents.push(a);
        config.rules.push(crate::config::Rule {
            when: [("la\nng".to_string(), "en".to_string())].into(),
            queue: "support".into(),
            priority: None,
        });
        let noted = control_characters(&config);
        assert_eq!(noted.len(), 3, "{noted:?}");
        assert!(
            noted[0].starts_with("agent `a1`: the address contains a control character (U+000D)")
        );
        assert!(noted[1]
            .starts_with("agent `a1`: skill \"f\\tr\" contains a control character (U+0009)"));
        assert!(noted[2].starts_with(
            "rule[0]: attribute name \"la\\nng\" contains a control character (U+000A)"
        ));
        // Many agents (a roster with Windows line endings): one note, the first few named.
        config.rules.clear();
        config.agents = (0..AGENT_NOTES_LISTED + 3)
            .map(|k| {
                let mut a = agent(&format!("a{k}"), 1);
                a.address = format!("sip:a{k}@pbx\r");
                a
            })
            .collect();
        assert_eq!(
            control_characters(&config),
            vec![format!(
                "{} agents: an address or skill contains a control character: such an address \
                 is handed to the PBX as it is (a login giving it is refused), and no event can \
                 require such a skill (`a0`, `a1`, `a2`, `a3`, `a4` and 3 more)",
                AGENT_NOTES_LISTED + 3
            )]
        );
    }

    /// `max_wait_s = 0` leaves every step after the first unreached, never step 0: it is entered
    /// on entry, and a call an agent is free for is offered there. The note named it too.
    #[test]
    fn with_max_wait_zero_every_step_but_the_first_is_never_reached() {
        let mut q = QueueConfig::with_defaults("mw0");
        q.steps = vec![step(0, &[1], 0), step(30_000, &[1, 2], 0)];
        q.max_wait_ms = Some(0);
        q.overflow = Some(crate::config::Overflow::Target("sip:vm@pbx".into()));
        assert_eq!(
            ladder_notes(&q),
            vec![
                "queue `mw0`: steps[1] (at 30s) is never reached: the queue overflows at \
                 max_wait_s = 0s first"
                    .to_string()
            ]
        );
        q.steps.truncate(1);
        assert_eq!(ladder_notes(&q), Vec::<String>::new());
    }

    #[test]
    fn the_support_ladder_reads_as_seconds_tiers_and_boost() {
        let ladder = [
            step(0, &[1], 0),
            step(30_000, &[1, 2], 0),
            step(60_000, &[1, 2, 3], 5),
        ];
        assert_eq!(steps(&ladder), "0s:[1] 30s:[1,2] 60s:[1,2,3]+5");
    }

    #[test]
    fn short_test_timers_show_fractions_of_a_second() {
        assert_eq!(seconds(200), "0.2s");
        assert_eq!(seconds(1_500), "1.5s");
        assert_eq!(seconds(1_005), "1.005s");
    }

    #[test]
    fn a_queue_line_counts_roster_agents_per_tier() {
        let mut q = QueueConfig::with_defaults("support");
        q.channels = vec![Channel::Voice, Channel::Chat];
        q.max_wait_ms = Some(600_000);
        q.overflow = Some(Overflow::Target("sip:voicemail@pbx".into()));
        let roster = [agent("a1", 1), agent("a2", 2), agent("a3", 1)];
        assert_eq!(
            queue_line(&q, &roster),
            "support: channels=voice,chat strategy=longest-idle steps=0s:[1] \
             agents=L1=2 L2=1 max_wait=600s→sip:voicemail@pbx"
        );
        assert_eq!(agents_per_tier("sales", &roster), "none");
    }

    #[test]
    fn settings_that_cannot_take_effect_are_noted_by_where_they_are_set() {
        let mut config = RoutingConfig::empty();
        assert_eq!(notes(&config), Vec::<String>::new(), "the defaults");
        config.channels[Channel::Voice.index()].capacity = 2;
        config.channels[Channel::Chat.index()].capacity = 4; // not exclusive: in effect
        let mut a1 = agent("a1", 1);
        a1.capacity.insert(Channel::Voice, 3);
        a1.capacity.insert(Channel::Email, 9);
        let mut a2 = agent("a2", 1);
        a2.capacity.insert(Channel::Voice, 1); // 1 is what exclusive means anyway
        config.agents = vec![a1, a2];
        let mut night = QueueConfig::with_defaults("night");
        night.closed_target = Some("sip:voicemail@pbx".into());
        let mut day = QueueConfig::with_defaults("day");
        day.closed_target = Some("sip:voicemail@pbx".into());
        day.schedule = Some(crate::config::routing::Schedule {
            tz: chrono_tz::Europe::Berlin,
            open: std::array::from_fn(|_| vec![(0, 24 * 60)]),
        });
        config.queues = vec![night.clone(), day];
        assert_eq!(
            notes(&config),
            vec![
                "channels.voice.capacity = 2 has no effect: voice is exclusive, so an agent \
                 holding one voice interaction is offered nothing else"
                    .to_string(),
                "agent `a1`: capacity.voice = 3 has no effect: voice is exclusive, so the agent \
                 never holds a second one"
                    .to_string(),
                "queue `night`: closed_target = \"sip:voicemail@pbx\" has no effect: the queue \
                 has no schedule, so it is never closed"
                    .to_string(),
            ]
        );
        // Up to AGENT_NOTES_LISTED agents per channel are named one by one; beyond, one note.
        let roster = |n: usize| -> Vec<AgentConfig> {
            (0..n)
                .map(|k| {
                    let mut a = agent(&format!("a{k}"), 1);
                    a.capacity.insert(Channel::Voice, 2 + k as u32);
                    a.capacity.insert(Channel::Chat, 5); // not exclusive: in effect
                    a
                })
                .collect()
        };
        config.channels[Channel::Voice.index()].capacity = 1;
        config.queues.clear();
        config.agents = roster(AGENT_NOTES_LISTED);
        let listed = notes(&config);
        assert_eq!(listed.len(), AGENT_NOTES_LISTED, "{listed:?}");
        assert!(listed[4].starts_with("agent `a4`: capacity.voice = 6 has no effect"));
        config.agents = roster(AGENT_NOTES_LISTED + 3);
        assert_eq!(
            notes(&config),
            vec![
                "8 agents: capacity.voice above 1 has no effect: voice is exclusive, so an agent \
                  never holds a second one (`a0` (2), `a1` (3), `a2` (4), `a3` (5), `a4` (6) and \
                  3 more)"
                    .to_string()
            ]
        );
        // A chat made exclusive: its capacity above 1 is now the one without effect, and the
        // agents' notes come grouped by channel, in channel order.
        config.channels[Channel::Chat.index()].exclusive = true;
        config.agents = roster(AGENT_NOTES_LISTED + 3);
        let grouped = notes(&config);
        assert_eq!(grouped.len(), 3, "{grouped:?}");
        assert!(grouped[0].starts_with("channels.chat.capacity = 4 has no effect"));
        assert!(grouped[1].starts_with("8 agents: capacity.voice above 1"));
        assert!(
            grouped[2].starts_with(
                "8 agents: capacity.chat above 1 has no effect: chat is exclusive, so an agent \
                 never holds a second one (`a0` (5), `a1` (5)"
            ),
            "{grouped:?}"
        );
        // Made exclusive with the default capacity (no capacity line): the default is named as
        // such, not quoted as a setting of the file.
        let mut defaulted = config.clone();
        defaulted.agents.clear();
        defaulted.channels[Channel::Chat.index()].capacity = 3;
        assert_eq!(
            notes(&defaulted),
            vec![
                "channels.chat.capacity (the default, 3) has no effect: chat is exclusive, so an \
                 agent holding one chat interaction is offered nothing else"
                    .to_string()
            ]
        );
        config.agents.clear();
        config.queues = vec![night];
        let rendered = render(&config);
        assert!(
            rendered.ends_with(
                "note: channels.chat.capacity = 4 has no effect: chat is exclusive, so an agent \
                 holding one chat interaction is offered nothing else\n\
                 note: queue `night`: closed_target = \"sip:voicemail@pbx\" has no effect: the \
                 queue has no schedule, so it is never closed\n"
            ),
            "{rendered}"
        );
    }
}
