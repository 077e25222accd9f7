//! Live config changes in the middle of random days: after every event, timer and reload the
//! engine's invariants hold (one owner, capacities, work conservation, nothing lost, no deadline
//! missed; `support::oracle::check_state` under the config in force) and its indexes agree with
//! its state (`check_consistency`). A refused event or reload changes nothing observable. At a
//! random step the engine is written to a snapshot and the run goes on with the engine read
//! back, which must hold the same state.
//!
//! Beside it runs a reference engine given the same inputs, whose every reload re-derives every
//! live interaction (`Engine::reconfigure_whole`), where the engine re-derives only the queues a
//! change touches: both must make the same decisions (timers due in the same millisecond
//! included) and hold the same state at every step.
//!
//! The reloads are drawn from variants of one floor that differ in what a live change may
//! touch: the ladder (with and without `skip_if_no_agents`, on the first or a middle step), overflow, strategy, wrap-up and
//! back-off delays, an agent's tiers, whether a third queue exists (removed, it drains into
//! `a`), which channels `b` serves, and voice's `exclusive` flag. That flag only ever goes from
//! on to off in a run: slots taken while voice was shared stay legal, and the oracle's
//! exclusivity check would otherwise judge them by a rule they were not taken under.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use tierline::config::{Channel, RoutingConfig, Strategy as Pick, Tier};
use tierline::engine::{DeclineReason, Engine, Event, InteractionState, RequestedState};

use support::oracle::{check_state, Observed};
use support::*;

const AGENTS: [&str; 4] = ["a1", "a2", "a3", "a4"];

/// One config a reload may install.
#[derive(Debug, Clone)]
struct Variant {
    ladder: u8,
    overflow: u8,
    strategy: u8,
    wrap_up_zero: bool,
    no_backoff: bool,
    a2_only_in_b: bool,
    with_c: bool,
    b_chat_only: bool,
    voice_shared: bool,
}

fn variant() -> impl proptest::strategy::Strategy<Value = Variant> {
    (
        0u8..4,
        0u8..3,
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![4 => Just(false), 1 => Just(true)],
        prop_oneof![3 => Just(false), 1 => Just(true)],
    )
        .prop_map(
            |(
                ladder,
                overflow,
                strategy,
                wrap_up_zero,
                no_backoff,
                a2_only_in_b,
                with_c,
                b_chat_only,
                voice_shared,
            )| Variant {
                ladder,
                overflow,
                strategy,
                wrap_up_zero,
                no_backoff,
                a2_only_in_b,
                with_c,
                b_chat_only,
                voice_shared,
            },
        )
}

/// The floor under variant `v`; `voice_shared` is sticky (see the module docs).
fn build(v: &Variant, voice_shared: bool) -> RoutingConfig {
    let both = [Channel::Voice, Channel::Chat];
    let ladder = match v.ladder {
        0 => vec![step(0, &[1])],
        1 => {
            let mut l = vec![step(0, &[1]), step(2, &[1, 2]).boosted(3)];
            l[0].skip_if_no_agents = true;
            l
        }
        2 => vec![step(0, &[1]), step(4, &[1, 2, 3]).boosted(5)],
        // A step in the middle passed over with nobody there: an offer ringing on it when its
        // last L2 leaves stays on it until it comes back.
        _ => {
            let mut l = vec![step(0, &[1]), step(1, &[2]), step(3, &[2, 3]).boosted(2)];
            l[1].skip_if_no_agents = true;
            l
        }
    };
    let mut a = with_channels(queue("a", ladder), &both);
    a.offer_timeout_ms = secs(3);
    a.wrap_up_ms = if v.wrap_up_zero { 0 } else { secs(2) };
    let delay = if v.no_backoff { 0 } else { secs(1) };
    a.reject_delay_ms = delay;
    a.busy_delay_ms = delay;
    a.no_answer_delay_ms = delay;
    a.max_waiting = Some(6);
    match v.overflow {
        0 => {}
        // Config validation refuses an overflow into a queue that does not serve every channel.
        1 => a = overflow_to_target(a, 6, "sip:vm@pbx"),
        _ if v.b_chat_only => a = overflow_to_target(a, 6, "sip:vm@pbx"),
        _ => a = overflow_to_queue(a, 6, "b"),
    }
    let mut b = with_channels(
        queue("b", vec![step(0, &[1, 2]), step(3, &[1, 2, 3])]),
        if v.b_chat_only {
            &[Channel::Chat][..]
        } else {
            &both[..]
        },
    );
    b.strategy = [
        Pick::LongestIdle,
        Pick::RoundRobin,
        Pick::Random,
        Pick::TierOrder,
    ][v.strategy as usize];
    b.offer_timeout_ms = secs(3);
    b.wrap_up_ms = secs(1);
    let mut queues = vec![a, b];
    if v.with_c {
        let mut c = with_channels(queue("c", vec![step(0, &[1])]), &both);
        c.drain_to = Some("a".into());
        queues.push(c);
    }
    let mut c_tier: Vec<(&str, Tier)> = Vec::new();
    if v.with_c {
        c_tier.push(("c", 1));
    }
    let with = |base: &[(&'static str, Tier)]| {
        let mut t = base.to_vec();
        t.extend(c_tier.iter().copied());
        t
    };
    let agents = vec![
        agent("a1", &with(&[("a", 1), ("b", 1)])),
        agent(
            "a2",
            if v.a2_only_in_b {
                &[("b", 2)][..]
            } else {
                &[("a", 2), ("b", 2)][..]
            },
        ),
        agent("a3", &[("a", 3)]),
        agent("a4", &with(&[("b", 1)])),
    ];
    let mut cfg = config(queues, agents);
    cfg.channels[Channel::Voice.index()].exclusive = !voice_shared;
    cfg.limits.max_history = 6;
    cfg
}

#[derive(Debug, Clone)]
enum Action {
    Arrive {
        queue: u8,
        chat: bool,
        priority: i32,
    },
    Accept(usize),
    Decline(usize, DeclineReason),
    Abandon(usize),
    End(usize),
    Transfer(usize, u8),
    Escalate(usize, Tier),
    Rate(usize),
    Agent(usize, u8),
    WrapupDone(usize),
    Wait(u64),
    Reload(Variant),
    /// A reload changing one aspect of the config in force (`tweak`): most live changes touch
    /// a queue or an agent, not everything.
    Tweak(u8),
}

/// The config in force with aspect `k` changed: queue `a`'s ladder, its overflow, its wrap-up
/// or back-off, queue `b`'s strategy or channels, agent `a2`'s tiers, queue `c`, voice sharing.
fn tweak(v: &Variant, k: u8) -> Variant {
    let mut v = v.clone();
    match k % 9 {
        0 => v.ladder = (v.ladder + 1) % 4,
        1 => v.overflow = (v.overflow + 1) % 3,
        2 => v.strategy = (v.strategy + 1) % 4,
        3 => v.wrap_up_zero = !v.wrap_up_zero,
        4 => v.no_backoff = !v.no_backoff,
        5 => v.a2_only_in_b = !v.a2_only_in_b,
        6 => v.with_c = !v.with_c,
        7 => v.b_chat_only = !v.b_chat_only,
        _ => v.voice_shared = !v.voice_shared,
    }
    v
}

fn action() -> impl proptest::strategy::Strategy<Value = Action> {
    let pick = 0usize..64;
    prop_oneof![
        6 => (0u8..3, any::<bool>(), 0i32..3)
            .prop_map(|(queue, chat, priority)| Action::Arrive { queue, chat, priority }),
        5 => pick.clone().prop_map(Action::Accept),
        2 => (pick.clone(), prop_oneof![
                Just(DeclineReason::Rejected),
                Just(DeclineReason::Busy),
                Just(DeclineReason::NoAnswer)
            ])
            .prop_map(|(i, r)| Action::Decline(i, r)),
        1 => pick.clone().prop_map(Action::Abandon),
        3 => pick.clone().prop_map(Action::End),
        2 => (pick.clone(), 0u8..3).prop_map(|(i, q)| Action::Transfer(i, q)),
        2 => (pick.clone(), 1u8..4).prop_map(|(i, t)| Action::Escalate(i, t)),
        1 => pick.clone().prop_map(Action::Rate),
        4 => (0usize..4, 0u8..4).prop_map(|(a, s)| Action::Agent(a, s)),
        1 => (0usize..4).prop_map(Action::WrapupDone),
        4 => (0u64..5_000).prop_map(Action::Wait),
        3 => variant().prop_map(Action::Reload),
        3 => (0u8..9).prop_map(Action::Tweak),
    ]
}

/// `engine` written to a snapshot and read back.
fn through_snapshot(engine: &Engine) -> Result<Engine, TestCaseError> {
    let mut bytes = Vec::new();
    engine
        .write_snapshot(&mut bytes)
        .map_err(|e| TestCaseError::fail(format!("snapshot: {e}")))?;
    Engine::read_snapshot(&mut bytes.as_slice())
        .map_err(|e| TestCaseError::fail(format!("snapshot read back: {e}")))
}

struct Run {
    engine: Engine,
    /// The reference, in lockstep: the same inputs, every reload re-deriving every live
    /// interaction (`reconfigure_whole`). Same decisions and state at every step, timers due in
    /// the same millisecond included.
    whole: Engine,
    cfg: RoutingConfig,
    /// The variant `cfg` was built from (what `Action::Tweak` changes).
    variant: Variant,
    voice_shared: bool,
    ids: Vec<String>,
    arrivals: u64,
    now: u64,
}

impl Run {
    fn observe(&self) -> Observed {
        Observed::take(&self.engine, &self.cfg, &self.ids)
    }

    fn check(&self, what: &str) -> Result<(), TestCaseError> {
        self.engine
            .check_consistency()
            .map_err(|e| TestCaseError::fail(format!("after {what}: {e}")))?;
        prop_assert_eq!(
            Observed::take(&self.whole, &self.cfg, &self.ids).fingerprint(),
            self.observe().fingerprint(),
            "after {}: the state differs from the reference's (every reload re-deriving all)",
            what
        );
        prop_assert_eq!(self.whole.next_deadline(), self.engine.next_deadline());
        check_state(&self.cfg, &self.observe(), self.arrivals)
            .map_err(|e| TestCaseError::fail(format!("after {what}: {e}")))
    }

    fn interaction(&self, k: usize) -> String {
        if self.ids.is_empty() {
            return "none".into();
        }
        self.ids[k % self.ids.len()].clone()
    }

    /// The agent an interaction is offered to (or held by), else a roster agent.
    fn holder(&self, id: &str, k: usize) -> String {
        match self.engine.interaction(id).map(|v| v.owner) {
            Some(tierline::engine::Owner::Agent(a)) => a.to_string(),
            _ => AGENTS[k % AGENTS.len()].to_string(),
        }
    }

    fn event(&mut self, action: &Action) -> Option<Event> {
        let queue = |q: u8| ["a", "b", "c"][q as usize % 3];
        Some(match action {
            Action::Arrive {
                queue: q,
                chat,
                priority,
            } => {
                let id = format!("i{}", self.ids.len());
                self.ids.push(id.clone());
                let channel = if *chat { Channel::Chat } else { Channel::Voice };
                Arrival::new(&id)
                    .queue(queue(*q))
                    .channel(channel)
                    .priority(*priority)
                    .event()
            }
            Action::Accept(k) => {
                let id = self.interaction(*k);
                let agent = self.holder(&id, *k);
                accept(&id, &agent)
            }
            Action::Decline(k, reason) => {
                let id = self.interaction(*k);
                let agent = self.holder(&id, *k);
                decline(&id, &agent, *reason)
            }
            Action::Abandon(k) => abandon(&self.interaction(*k)),
            Action::End(k) => end(&self.interaction(*k)),
            Action::Transfer(k, q) => transfer(&self.interaction(*k), queue(*q)),
            Action::Escalate(k, t) => escalate(&self.interaction(*k), *t),
            Action::Rate(k) => rate(&self.interaction(*k), 4),
            Action::Agent(a, s) => {
                let id = AGENTS[*a];
                match s {
                    0 => login(id),
                    1 => set_state(id, RequestedState::NotReady, Some("break")),
                    2 => logout(id),
                    _ => set_state(id, RequestedState::Available, None),
                }
            }
            Action::WrapupDone(a) => wrapup_done(AGENTS[*a]),
            Action::Wait(_) | Action::Reload(_) | Action::Tweak(_) => return None,
        })
    }

    /// Write the engine to a snapshot and go on with the engine read back: same state, same
    /// next deadline and seq, and the invariants hold under the config in force.
    fn round_trip(&mut self) -> Result<(), TestCaseError> {
        let before = self.observe().fingerprint();
        let (deadline, seq) = (self.engine.next_deadline(), self.engine.next_seq());
        self.engine = through_snapshot(&self.engine)?;
        self.whole = through_snapshot(&self.whole)?;
        prop_assert_eq!(
            self.observe().fingerprint(),
            before,
            "the snapshot read back differs"
        );
        prop_assert_eq!(self.engine.next_deadline(), deadline);
        prop_assert_eq!(self.engine.next_seq(), seq);
        self.check("snapshot read back")
    }

    /// Fire the timers due at `t` in both engines: the same decisions.
    fn advance(&mut self, t: u64) -> Result<(), TestCaseError> {
        let got = self.engine.advance(t);
        let expected = self.whole.advance(t);
        prop_assert_eq!(
            got,
            expected,
            "timers at {}: decided otherwise than the reference",
            t
        );
        Ok(())
    }

    fn step(&mut self, action: &Action) -> Result<(), TestCaseError> {
        if let Action::Wait(ms) = action {
            let target = self.now + ms;
            // Timers one deadline at a time, checking after each.
            while let Some(d) = self.engine.next_deadline().filter(|d| *d <= target) {
                self.advance(d)?;
                self.now = d;
                self.check(&format!("timers at {d}"))?;
            }
            self.advance(target)?;
            self.now = target;
            return self.check(&format!("advance to {target}"));
        }
        // Timers due now fire first, as the daemon fires them before any input.
        if self.engine.next_deadline().is_some_and(|d| d <= self.now) {
            self.advance(self.now)?;
            self.check(&format!("timers at {}", self.now))?;
        }
        let tweaked;
        let reload = match action {
            Action::Reload(v) => Some(v),
            Action::Tweak(k) => {
                tweaked = tweak(&self.variant, *k);
                Some(&tweaked)
            }
            _ => None,
        };
        if let Some(v) = reload {
            let voice_shared = self.voice_shared || v.voice_shared;
            let next = build(v, voice_shared);
            let before = self.observe().fingerprint();
            // The reference: the same change re-deriving every live interaction.
            let expected = self.whole.reconfigure_whole(self.now, next.clone());
            match self.engine.reconfigure(self.now, next.clone()) {
                Ok(decided) => {
                    prop_assert_eq!(
                        expected.as_ref().ok(),
                        Some(&decided),
                        "reload to {:?}: the touched queues decided otherwise than all of them",
                        v
                    );
                    self.cfg = next;
                    self.voice_shared = voice_shared;
                    self.variant = v.clone();
                    return self.check(&format!("reload to {v:?}"));
                }
                Err(e) => {
                    prop_assert!(
                        expected.is_err(),
                        "reload to {:?} refused ({}), but applied re-deriving everything",
                        v,
                        e
                    );
                    prop_assert_eq!(
                        self.observe().fingerprint(),
                        before,
                        "refused reload ({}) changed the state",
                        e
                    );
                    return Ok(());
                }
            }
        }
        let Some(event) = self.event(action) else {
            return Ok(());
        };
        let before = self.observe().fingerprint();
        let result = self.engine.handle(self.now, &event);
        let expected = self.whole.handle(self.now, &event);
        prop_assert_eq!(
            expected.as_ref().ok(),
            result.as_ref().ok(),
            "{:?}: decided otherwise than the reference",
            event
        );
        match result {
            Ok(_) => {
                if matches!(event, Event::InteractionArrived { .. }) {
                    self.arrivals += 1;
                }
                self.check(&format!("{event:?}"))
            }
            Err(e) => {
                if let Event::InteractionArrived { interaction, .. } = &event {
                    self.ids.retain(|i| i != interaction);
                }
                prop_assert_eq!(
                    self.observe().fingerprint(),
                    before,
                    "refused {:?} ({}) changed the state",
                    event,
                    e
                );
                Ok(())
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: proptest_cases(1_000),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn live_reloads_keep_every_invariant(
        first in variant(),
        script in prop::collection::vec(action(), 1..70),
        cut in any::<prop::sample::Index>(),
    ) {
        let cfg = build(&first, first.voice_shared);
        let mut run = Run {
            engine: Engine::new(cfg.clone(), 0),
            whole: Engine::new(cfg.clone(), 0),
            cfg,
            variant: first.clone(),
            voice_shared: first.voice_shared,
            ids: Vec::new(),
            arrivals: 0,
            now: 0,
        };
        // Somewhere in the run (between reloads too), the engine goes through a snapshot.
        let cut = cut.index(script.len() + 1);
        for (n, action) in script.iter().enumerate() {
            if n == cut {
                run.round_trip()?;
            }
            run.step(action)?;
        }
        // Let every timer run out: nothing is stuck, and nothing waits forever that could not.
        for _ in 0..500 {
            let Some(d) = run.engine.next_deadline() else { break };
            run.step(&Action::Wait(d - run.now))?;
        }
        let states: BTreeMap<String, InteractionState> = run
            .ids
            .iter()
            .filter_map(|id| run.engine.interaction(id).map(|v| (id.clone(), v.state)))
            .collect();
        prop_assert_eq!(states.len(), run.ids.len(), "an interaction vanished: {:?}", states);
    }
}
