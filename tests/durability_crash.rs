//! The crash test: the real binary, real files, `kill -9` at random moments under a mixed load,
//! a restart on the same journal directory each time, and after every restart: every event that
//! got a 2xx is reflected, no interaction vanished, no agent is over capacity or holds an offer
//! for an interaction that no longer exists, and the decision seq is gap-free. At the end the
//! daemon's decisions equal those of a fresh core (snapshot 0) fed the journal's dumped inputs.

mod daemon_process;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use daemon_process::{spawn, wait_ready};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::daemon::core::{Core, TimedInput};

const AGENTS: usize = 6;
/// Kill/restart rounds; `TIERLINE_CRASH_ITERATIONS` raises it for a longer stress run.
const ITERATIONS: u64 = 20;
/// Base of the per-round seeds; `TIERLINE_CRASH_SEED` picks other loads and kill moments.
const SEED: u64 = 0x5eed;

/// `name` from the environment as a number, else `default`.
fn knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}=`{v}` is not a number")),
        Err(_) => default,
    }
}

fn config_text() -> String {
    let mut text = String::from(
        "[defaults]\noffer_timeout_s = 3600\n\n[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n\n",
    );
    for i in 0..AGENTS {
        text.push_str(&format!(
            "[[agent]]\nid = \"a{i}\"\naddress = \"sip:a{i}@pbx\"\ntiers = {{ support = 1 }}\n\n"
        ));
    }
    text.push_str("[journal]\nsync = \"batch\"\n");
    text
}

/// What the client knows for sure: acknowledged arrivals and each agent's last acknowledged
/// login/logout (unless a later request for it was in flight at the kill).
#[derive(Default)]
struct Acked {
    arrivals: BTreeSet<String>,
    logged_in: BTreeMap<String, Option<bool>>,
}

async fn drive(http: reqwest::Client, base: String, seed: u64, iteration: u64) -> Acked {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut acked = Acked::default();
    for k in 0.. {
        let agent = format!("a{}", rng.gen_range(0..AGENTS));
        let id = format!("i{iteration}-{k}");
        let (body, login) = match rng.gen_range(0..4) {
            0 => (
                json!({"id": id, "type": "agent.login", "agent": agent}),
                Some(true),
            ),
            1 => (
                json!({"id": id, "type": "agent.logout", "agent": agent}),
                Some(false),
            ),
            _ => (
                json!({"id": id, "type": "interaction.arrived", "interaction": id,
                       "channel": "voice", "queue": "support"}),
                None,
            ),
        };
        if login.is_some() {
            // In flight: unknown until answered.
            acked.logged_in.insert(agent.clone(), None);
        }
        let sent = http
            .post(format!("{base}/v1/events"))
            .json(&body)
            .send()
            .await;
        let Ok(response) = sent else { break };
        if !response.status().is_success() {
            continue;
        }
        let Ok(answer) = response.json::<Value>().await else {
            break;
        };
        let status = &answer["results"][0]["status"];
        match login {
            Some(l) if status == "applied" => {
                acked.logged_in.insert(agent, Some(l));
            }
            // Refused (e.g. logout of a logged-out agent): the state is what it was, which
            // the client cannot know for sure here.
            Some(_) => {}
            None if status == "applied" => {
                acked.arrivals.insert(id);
            }
            None => {}
        }
    }
    acked
}

async fn get(http: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let r = http.get(url).send().await.expect("request");
    let status = r.status();
    (status, r.json().await.expect("JSON"))
}

/// Every check after a restart; returns the decisions the daemon holds.
async fn check(
    http: &reqwest::Client,
    base: &str,
    acked: &Acked,
    all_arrivals: &BTreeSet<String>,
) -> Vec<Value> {
    for id in &acked.arrivals {
        let (status, body) = get(http, format!("{base}/v1/interactions/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged arrival {id} vanished: {body}"
        );
    }
    for id in all_arrivals {
        let (status, _) = get(http, format!("{base}/v1/interactions/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "interaction {id} from an earlier run vanished"
        );
    }
    let (_, agents) = get(http, format!("{base}/v1/agents")).await;
    let agents = agents["agents"].as_array().expect("agents").clone();
    let mut offered = BTreeSet::new();
    for a in &agents {
        let id = a["id"].as_str().unwrap();
        for (channel, load) in a["load"].as_object().unwrap() {
            let cap = a["capacity"][channel].as_u64().unwrap_or(1);
            assert!(load.as_u64().unwrap() <= cap, "{id} over capacity: {a}");
        }
        for slot in a["interactions"].as_array().unwrap() {
            let interaction = slot["interaction"].as_str().expect("slot interaction");
            assert!(
                offered.insert(interaction.to_string()),
                "{interaction} held twice"
            );
            let (status, body) = get(http, format!("{base}/v1/interactions/{interaction}")).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{id} holds {interaction} which is gone: {body}"
            );
        }
        if let Some(Some(logged_in)) = acked.logged_in.get(id) {
            assert_eq!(
                !a["logged_in_since"].is_null(),
                *logged_in,
                "{id}: last acknowledged login/logout lost: {a}"
            );
        }
    }
    let (status, body) = get(
        http,
        format!("{base}/v1/decisions?after=0&wait_ms=0&limit=100000"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let decisions = body["decisions"].as_array().unwrap().clone();
    for (i, d) in decisions.iter().enumerate() {
        assert_eq!(
            d["seq"].as_u64(),
            Some(i as u64 + 1),
            "decision seq gap at {i}"
        );
    }
    decisions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_at_random_moments_loses_no_acknowledged_event() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("tierline.toml");
    std::fs::write(&config, config_text()).unwrap();
    let data = tmp.path().join("data");
    let http = reqwest::Client::new();
    let mut all_arrivals = BTreeSet::new();
    let mut logged_in: BTreeMap<String, Option<bool>> = BTreeMap::new();
    let mut decisions = Vec::new();
    let (iterations, seed_base) = (
        knob("TIERLINE_CRASH_ITERATIONS", ITERATIONS),
        knob("TIERLINE_CRASH_SEED", SEED),
    );
    for iteration in 0..iterations {
        let seed = seed_base + iteration;
        let (mut child, base) = spawn(&config, &data);
        wait_ready(&http, &base).await;
        let acked = Acked {
            arrivals: BTreeSet::new(),
            logged_in: logged_in.clone(),
        };
        decisions = check(&http, &base, &acked, &all_arrivals).await;
        let load = tokio::spawn(drive(http.clone(), base.clone(), seed, iteration));
        let kill_after = ChaCha8Rng::seed_from_u64(seed).gen_range(20..200);
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        let acked = load.await.unwrap();
        all_arrivals.extend(acked.arrivals.iter().cloned());
        for (agent, state) in acked.logged_in {
            logged_in.insert(agent, state);
        }
    }
    // One last restart: check, then compare with a fresh core fed the journal's inputs.
    let (mut child, base) = spawn(&config, &data);
    wait_ready(&http, &base).await;
    let acked = Acked {
        arrivals: BTreeSet::new(),
        logged_in,
    };
    let served = check(&http, &base, &acked, &all_arrivals).await;
    assert!(served.len() >= decisions.len());
    assert!(
        all_arrivals.len() > 20,
        "the load was too light: {}",
        all_arrivals.len()
    );
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    // Snapshot 0 holds the fresh state (config and start time); no later one was due.
    let from_snapshot = data.join(format!("{:020}.snap", 0));
    let (_, bytes) = tierline::journal::snapshot::read_snapshot(&from_snapshot).unwrap();
    let mut fresh = Core::load(&bytes).unwrap();
    let mut dumped = Vec::new();
    tierline::journal::dump(&data, &mut dumped).unwrap();
    for line in String::from_utf8(dumped).unwrap().lines() {
        let input: TimedInput =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        fresh.apply(&input.input, input.at);
    }
    let replayed: Vec<Value> = fresh
        .decisions_after(None, 1_000_000)
        .unwrap()
        .decisions
        .iter()
        .map(|d| serde_json::from_str(&d.json).unwrap())
        .collect();
    assert_eq!(
        replayed, served,
        "the daemon's decisions differ from a replay of its journal"
    );
}
