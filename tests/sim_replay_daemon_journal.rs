//! `simulate --replay` on a journal a daemon wrote: it stops mid-afternoon, with offers still
//! ringing, which a simulator's own recording (drained to the end) never has.

#[path = "api_common/mod.rs"]
mod api_common;

use api_common::{call, loaded, login, TestDaemon};
use tierline::daemon::DaemonOptions;
use tierline::sim::replay::{replay, ReplayOptions};

/// docs/SIMULATOR.md: with the journal's own config the new column reproduces the old one. The
/// journal ends with the offer of `c1` to `a1` ringing, never answered: the new run lets it
/// ring too. Before, the agent answered it at once (a response drawn from nothing), so the new
/// column showed an answer the recording does not have.
#[tokio::test]
async fn an_offer_ringing_when_the_daemon_stopped_is_not_answered_in_the_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::new(loaded(api_common::one_agent_desk()));
    options.journal_dir = Some(dir.path().to_path_buf());
    let d = TestDaemon::start(options).await;
    d.apply(login("e1", "a1")).await;
    d.apply(call("e2", "c1")).await;
    d.apply(call("e3", "c2")).await;
    d.stop().await;

    let options = ReplayOptions {
        seed: 1,
        agents: false,
        add_roster_agents: false,
    };
    let r = replay(dir.path(), api_common::one_agent_desk(), &options).expect("replay runs");
    let (old, new) = (&r.old.overall, &r.new.overall);
    assert_eq!(old.offered, 2, "{old:?}");
    assert_eq!(old.answered, 0, "{old:?}");
    assert_eq!(new.answered, 0, "old {old:?}\nnew {new:?}");
    assert_eq!(new.offered, old.offered);
}
