//! Live config changes through `PUT /v1/config`, `POST /v1/config/validate`, SIGHUP and the file
//! watch: waiting interactions are never lost and keep their places, new agents take calls at
//! once, changed ladders apply from queue entry, and a bad config is refused whole with every
//! problem (line, field, message) while the old one stays.

mod api_common;

use api_common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::daemon::DaemonOptions;

const BASE: &str = r#"
[server]
listen = "127.0.0.1:0"

[[queue]]
id = "support"
channels = ["voice"]
offer_timeout_s = 30
steps = [ { after_s = 0, tiers = [1] }, { after_s = 600, tiers = [1, 2] } ]

[[queue]]
id = "billing"
channels = ["voice"]

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = { billing = 1 }
"#;

async fn start(text: &str) -> TestDaemon {
    let config = tierline::config::parse(text, "test.toml").expect("valid test config");
    TestDaemon::start(DaemonOptions::new(config)).await
}

/// `POST /v1/config/validate` with `text` as TOML: the status and the JSON answer.
async fn validate_config(t: &TestDaemon, text: &str) -> (StatusCode, Value) {
    send_toml(t, reqwest::Method::POST, "/v1/config/validate", text).await
}

async fn get_config(t: &TestDaemon) -> String {
    t.http
        .get(t.url("/v1/config"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn entered_at(t: &TestDaemon, id: &str) -> String {
    let (_, i) = t.get(&format!("/v1/interactions/{id}")).await;
    assert_eq!(i["state"], "waiting", "{i}");
    i["entered_queue_at"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_reload_with_calls_waiting_keeps_them_and_their_places_and_a_new_l2_agent_takes_them() {
    let t = start(BASE).await;
    for i in 1..=3 {
        let d = t.apply(call(&format!("e{i}"), &format!("c{i}"))).await;
        assert_eq!(d[0]["type"], "queued");
        assert_eq!(d[0]["position"], i);
    }
    let before: Vec<String> = futures::future::join_all((1..=3).map(|i| {
        let t = &t;
        async move { entered_at(t, &format!("c{i}")).await }
    }))
    .await;

    // Add an L2 agent and let L2 take calls from the first step.
    let new = BASE.replace(
        "steps = [ { after_s = 0, tiers = [1] }, { after_s = 600, tiers = [1, 2] } ]",
        "steps = [ { after_s = 0, tiers = [1, 2] } ]",
    ) + "\n[[agent]]\nid = \"l2\"\naddress = \"sip:l2@pbx\"\ntiers = { support = 2 }\n";
    let (status, body) = put_config(&t, &new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["applied"], true);
    assert_eq!(get_config(&t).await, new);

    let (_, q) = t.get("/v1/queues/support").await;
    assert_eq!(q["waiting"], 3, "no waiting call was dropped");
    for (i, entered) in before.iter().enumerate() {
        assert_eq!(
            &entered_at(&t, &format!("c{}", i + 1)).await,
            entered,
            "waiting time kept"
        );
    }
    // The new L2 agent logs in and gets the call that has waited longest, at once.
    let offer = t.apply(login("e9", "l2")).await;
    assert_eq!(offer[0]["type"], "offer");
    assert_eq!(offer[0]["interaction"], "c1");
    t.stop().await;
}

#[tokio::test]
async fn a_changed_ladder_applies_to_waiting_calls_from_when_they_entered_the_queue() {
    let t = start(BASE).await;
    t.apply(login("e0", "a1")).await; // billing only: not eligible for support
    let queued = t.apply(call("e1", "c1")).await;
    let entered = at_ms(&queued[0]);
    let mut after = queued[0]["seq"].as_u64().unwrap();
    // The second step moves from 600 s to 2 s, and a1 becomes an L2 agent of support.
    let new = BASE.replace("after_s = 600", "after_s = 2").replace(
        "tiers = { billing = 1 }",
        "tiers = { billing = 1, support = 2 }",
    );
    let (status, body) = put_config(&t, &new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = t.wait_for(&mut after, |d| is(d, "offer")).await;
    let escalated = seen.iter().find(|d| is(d, "escalated")).expect("escalated");
    assert_eq!(
        at_ms(escalated),
        entered + 2_000,
        "measured from queue entry"
    );
    assert_eq!(seen.last().unwrap()["agent"], "a1");
    t.stop().await;
}

#[tokio::test]
async fn a_bad_config_is_refused_with_every_problem_and_the_old_one_stays() {
    let t = start(BASE).await;
    let bad = BASE
        .replace(
            "offer_timeout_s = 30",
            "offer_timeout_s = 30\nstrategy = \"fastest\"",
        )
        .replace("tiers = { billing = 1 }", "tiers = { nowhere = 1 }");
    let (status, body) = put_config(&t, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config");
    let problems = body["error"]["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{body}");
    let strategy = problems
        .iter()
        .find(|p| p["field"].as_str().unwrap().ends_with("strategy"))
        .expect("the strategy problem");
    assert_eq!(strategy["line"], 9);
    assert!(strategy["message"].as_str().unwrap().contains("fastest"));
    assert!(problems
        .iter()
        .any(|p| p["message"].as_str().unwrap().contains("nowhere")));
    assert_eq!(get_config(&t).await, BASE, "old config kept");

    // validate says the same without changing anything, and accepts a good config.
    let r = t
        .http
        .post(t.url("/v1/config/validate"))
        .header("content-type", "text/plain")
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = validate_config(&t, BASE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["valid"], true);
    assert_eq!(body["queues"], json!(["support", "billing"]));
    t.stop().await;
}

#[tokio::test]
async fn an_empty_config_body_is_refused_and_a_good_one_says_what_needs_a_restart() {
    let t = start(BASE).await;
    for body in ["", "  \n\n"] {
        let (status, answer) = put_config(&t, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["code"], "empty_config");
        let (status, _) = validate_config(&t, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(get_config(&t).await, BASE, "old config kept");
    let queues: Value = t
        .http
        .get(t.url("/v1/queues"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        queues["queues"].as_array().map(Vec::len),
        Some(2),
        "{queues}"
    );
    // Applied: `restart_needed` is there even when nothing needs a restart.
    let (status, answer) = put_config(&t, BASE).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["restart_needed"], json!([]), "{answer}");
    assert_eq!(answer["notes"], json!([]), "{answer}");
    t.stop().await;
}

#[tokio::test]
async fn validate_and_put_name_the_settings_that_would_have_no_effect() {
    let t = start(BASE).await;
    let noted = format!(
        "[channels.voice]\ncapacity = 2\n{}",
        BASE.replace(
            "id = \"billing\"\n",
            "id = \"billing\"\nclosed_target = \"sip:voicemail@pbx\"\n"
        )
    );
    let expected = json!([
        "channels.voice.capacity = 2 has no effect: voice is exclusive, so an agent holding one \
         voice interaction is offered nothing else",
        "queue `billing`: closed_target = \"sip:voicemail@pbx\" has no effect: the queue has no \
         schedule, so it is never closed"
    ]);
    let (status, body) = validate_config(&t, &noted).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["notes"], expected, "{body}");
    // Legal all the same: applied, and the answer says the same.
    let (status, answer) = put_config(&t, &noted).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["notes"], expected, "{answer}");
    assert_eq!(get_config(&t).await, noted);
    t.stop().await;
}

#[tokio::test]
async fn removing_a_queue_with_waiting_calls_needs_drain_to() {
    let t = start(BASE).await;
    t.apply(
        json!({"id": "e1", "type": "interaction.arrived", "interaction": "b1",
                   "channel": "voice", "queue": "billing"}),
    )
    .await;
    let entered = entered_at(&t, "b1").await;
    let without_billing = BASE
        .replace("[[queue]]\nid = \"billing\"\nchannels = [\"voice\"]\n", "")
        .replace("tiers = { billing = 1 }", "tiers = { support = 1 }");
    // validate refuses it as PUT will: the file is fine, the live call is not.
    let (status, checked) = validate_config(&t, &without_billing).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(checked["error"]["code"], "invalid_config", "{checked}");
    let (status, body) = put_config(&t, &without_billing).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"]["problems"][0]["message"], checked["error"]["problems"][0]["message"],
        "validate and PUT say the same"
    );
    // It names what it concerns, so a UI can attach it: the config's queues.
    assert_eq!(body["error"]["problems"][0]["field"], "queue", "{body}");
    assert_eq!(
        checked["error"]["problems"][0]["field"], "queue",
        "{checked}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("billing") && message.contains("drain_to"),
        "{message}"
    );
    // It says how: the two steps below.
    assert!(
        message.contains("first apply a config in which queue `billing` has `drain_to"),
        "{message}"
    );
    let (_, q) = t.get("/v1/queues/billing").await;
    assert_eq!(q["waiting"], 1);

    // Step 1: name where billing drains to. Step 2: remove it; the call moves with its wait.
    let draining = BASE.replace(
        "id = \"billing\"\nchannels = [\"voice\"]\n",
        "id = \"billing\"\nchannels = [\"voice\"]\ndrain_to = \"support\"\n",
    );
    assert_eq!(put_config(&t, &draining).await.0, StatusCode::OK);
    let (status, body) = put_config(&t, &without_billing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, b1) = t.get("/v1/interactions/b1").await;
    assert_eq!(b1["queue"], "support");
    assert_eq!(b1["state"], "waiting");
    assert_eq!(b1["arrived_at"].as_str().unwrap(), entered);
    t.stop().await;
}

/// A daemon on the config at `path`, watching it, with `a1` logged in (billing only) and call
/// `c1` waiting in support; and the seq of that `queued`.
async fn watching_with_a_call_waiting(path: &std::path::Path) -> (TestDaemon, u64) {
    let mut options = DaemonOptions::new(tierline::config::load(path).unwrap());
    options.config_path = Some(path.to_path_buf());
    options.watch_config = true;
    let t = TestDaemon::start(options).await;
    t.apply(login("e0", "a1")).await;
    let queued = t.apply(call("e1", "c1")).await;
    assert_eq!(queued[0]["type"], "queued");
    let after = queued[0]["seq"].as_u64().unwrap();
    (t, after)
}

/// `BASE` with `a1` serving support too: applied, the waiting call is offered to `a1`.
fn a1_also_on_support() -> String {
    BASE.replace(
        "tiers = { billing = 1 }",
        "tiers = { billing = 1, support = 1 }",
    )
}

#[tokio::test]
async fn editing_the_config_file_reloads_it_and_sighup_does_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tierline.toml");
    std::fs::write(&path, BASE).unwrap();
    let (t, mut after) = watching_with_a_call_waiting(&path).await;

    // The file changes on disk (write to a temp file and rename, as editors do): a1 now serves
    // support, so the waiting call is offered to a1 without any other event.
    let edited = a1_also_on_support();
    let tmp = dir.path().join("tierline.toml.tmp");
    std::fs::write(&tmp, &edited).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let seen = t.wait_for(&mut after, |d| is(d, "offer")).await;
    assert_eq!(seen.last().unwrap()["agent"], "a1");
    assert_eq!(get_config(&t).await, edited);

    // SIGHUP with the file unchanged applies nothing; a broken file is refused and reported.
    let report = t.daemon().sighup().await.unwrap();
    assert!(!report.applied);
    std::fs::write(&path, "[[queue]]\nid = 7\n").unwrap();
    let err = t.daemon().sighup().await.unwrap_err();
    assert!(err.to_string().contains("old config kept"), "{err}");
    assert_eq!(get_config(&t).await, edited);
    // A file caught empty while a deploy tool rewrites it in place is refused too, not applied
    // as a config with no queues that would remove every queue.
    std::fs::write(&path, "").unwrap();
    let err = t.daemon().sighup().await.unwrap_err();
    assert!(
        err.to_string().contains("the config file is empty"),
        "{err}"
    );
    assert_eq!(get_config(&t).await, edited);
    let (_, queues) = t.get("/v1/queues").await;
    assert_eq!(queues["queues"].as_array().unwrap().len(), 2, "{queues}");
    t.stop().await;
}

/// A config mounted the Kubernetes ConfigMap way (`tierline.toml -> ..data/tierline.toml`,
/// `..data -> ..v1`) is updated by swapping the `..data` link: no event carries the config's own
/// name, yet the change is picked up (before, only SIGHUP applied it).
#[tokio::test]
async fn a_config_map_style_symlink_swap_is_reloaded_by_the_watch() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mount");
    std::fs::create_dir_all(mount.join("..v1")).unwrap();
    std::fs::write(mount.join("..v1/tierline.toml"), BASE).unwrap();
    symlink("..v1", mount.join("..data")).unwrap();
    symlink("..data/tierline.toml", mount.join("tierline.toml")).unwrap();
    let path = mount.join("tierline.toml");
    let (t, mut after) = watching_with_a_call_waiting(&path).await;

    // The new version goes into a new directory, then `..data` is swapped to it atomically.
    let edited = a1_also_on_support();
    std::fs::create_dir_all(mount.join("..v2")).unwrap();
    std::fs::write(mount.join("..v2/tierline.toml"), &edited).unwrap();
    symlink("..v2", mount.join("..data_tmp")).unwrap();
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
    let seen = t.wait_for(&mut after, |d| is(d, "offer")).await;
    assert_eq!(seen.last().unwrap()["agent"], "a1");
    assert_eq!(get_config(&t).await, edited);
    t.stop().await;
}

/// A config that is not blank but has no `[[queue]]` (a deploy tool's header comment written
/// first, a `[routing]` section alone) would remove every queue: a live change refuses it
/// (validate, preview and PUT alike), naming why and what to do, and nothing changes.
#[tokio::test]
async fn a_live_change_to_a_config_with_no_queues_is_refused() {
    let t = start(BASE).await;
    for body in [
        "# config being rewritten by a deploy tool\n",
        "[routing]\nseed = 1\n",
    ] {
        for (what, (status, answer)) in [
            ("validate", validate_config(&t, body).await),
            ("preview", preview_config(&t, body).await),
            ("PUT", put_config(&t, body).await),
        ] {
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{what} {body:?} → {answer}"
            );
            let text = answer.to_string();
            assert!(
                text.contains("the new config has no [[queue]]: it would remove all 2 queue(s)"),
                "{what} {body:?} → {answer}"
            );
        }
    }
    let (_, queues) = t.get("/v1/queues").await;
    assert_eq!(queues["queues"].as_array().unwrap().len(), 2, "{queues}");
    assert_eq!(get_config(&t).await, BASE, "the config in force changed");
    t.stop().await;
}

/// A body that is nothing but a UTF-8 byte order mark (what Notepad saves for an "empty" file)
/// is as empty as an empty body: refused with `empty_config`, not applied as a config with no
/// queues that removes every queue and roster agent.
#[tokio::test]
async fn a_body_of_only_a_byte_order_mark_is_an_empty_config() {
    let t = start(BASE).await;
    for body in ["\u{FEFF}", "\u{FEFF}\n", "\u{FEFF}  \r\n"] {
        let (status, answer) = validate_config(&t, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validate {body:?} → {answer}"
        );
        let (status, answer) = put_config(&t, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "PUT {body:?} → {answer}"
        );
        assert_eq!(answer["error"]["code"], "empty_config", "{answer}");
    }
    let (_, queues) = t.get("/v1/queues").await;
    assert_eq!(
        queues["queues"].as_array().unwrap().len(),
        2,
        "queues wiped: {queues}"
    );
    assert_eq!(get_config(&t).await, BASE, "the config in force changed");
    t.stop().await;
}

/// A `PUT /v1/config` whose answer is cut off by the request timeout (here: the journal sync
/// stalls) is still applied whole once the disk comes back: the routing config and the
/// credentials its `[auth]` names take effect together. Before, the handler was dropped between
/// the two and left the new routing config (served as in force) with the old admin token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_put_cut_off_by_the_request_timeout_is_applied_whole_not_half() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let set_gate = |closed: bool| gate.set(closed);
    let mut config = loaded(routing());
    config.daemon.server.request_timeout_ms = 300;
    config.daemon.auth.read_tokens_env = Some("READ".into());
    config.daemon.auth.admin_tokens_env = Some("ADMIN".into());
    let mut options = DaemonOptions::new(config);
    options.env = std::sync::Arc::new(|name: &str| match name {
        "READ" => Some("wallboard-token".into()),
        "ADMIN" => Some("admin-old".into()),
        "ADMIN_NEXT" => Some("admin-new".into()),
        _ => None,
    });
    options.journal_dir = Some(dir.path().to_path_buf());
    options.journal_sync = Some(gate.sync());
    let t = TestDaemon::start(options).await;

    // Rotate the admin token and drop the `sales` queue while the disk is stalled.
    let rotated = "[auth]\nread_tokens_env = \"READ\"\nadmin_tokens_env = \"ADMIN_NEXT\"\n\
                   [[queue]]\nid = \"support\"\nchannels = [\"voice\", \"chat\"]\n";
    set_gate(true);
    let r = t
        .http
        .put(t.url("/v1/config"))
        .bearer_auth("admin-old")
        .header("content-type", "application/toml")
        .body(rotated)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
    set_gate(false);

    // Once the sync is through, the whole change is in force: wait (bounded) for the new token.
    let validate = |token: &'static str| {
        t.http
            .post(t.url("/v1/config/validate"))
            .bearer_auth(token)
            .header("content-type", "application/toml")
            .body(rotated)
            .send()
    };
    let mut new_admin = StatusCode::UNAUTHORIZED;
    for _ in 0..250 {
        new_admin = validate("admin-new").await.unwrap().status();
        if new_admin == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        new_admin,
        StatusCode::OK,
        "the rotated admin token never came into force"
    );
    assert_eq!(
        validate("admin-old").await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "the replaced admin token still works"
    );
    let r = t
        .http
        .get(t.url("/v1/config"))
        .bearer_auth("admin-new")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), rotated);
    let r = t
        .http
        .get(t.url("/v1/queues/sales"))
        .bearer_auth("admin-new")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    t.stop().await;
}

/// A config is journaled whole as one record, as a JSON string in which `"`, `\` and line
/// breaks take two bytes: a valid config within the largest body limit (16 MiB) can still be
/// too large for a record (32 MiB). It is refused with a 422 giving both sizes, nothing changes,
/// and events keep being applied. Before, the journal failed the engine's whole batch with a
/// retryable 503 that no retry could fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_too_large_to_journal_is_refused_with_its_size_not_a_journal_outage() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 16 << 20;
    let mut config = loaded(routing());
    config.daemon.server.body_limit_bytes = limit;
    config.daemon.server.request_timeout_ms = 600_000;
    let mut options = DaemonOptions::new(config);
    options.journal_dir = Some(dir.path().to_path_buf());
    let t = TestDaemon::start(options).await;

    // A valid config of exactly `limit` bytes: one queue, then a comment of `"` characters.
    let head = "[[queue]]\nid = \"q\"\n#";
    let mut toml = String::with_capacity(limit);
    toml.push_str(head);
    toml.push_str(&"\"".repeat(limit - head.len()));
    assert!(
        tierline::config::parse(&toml, "t").is_ok(),
        "the config is valid"
    );
    for path in ["/v1/config/validate", "/v1/config"] {
        let r = t
            .http
            .request(
                if path == "/v1/config" {
                    reqwest::Method::PUT
                } else {
                    reqwest::Method::POST
                },
                t.url(path),
            )
            .header("content-type", "application/toml")
            .body(toml.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_config", "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("once journaled") && message.contains("33554416"),
            "{path}: {message}"
        );
    }
    // Nothing changed, and the engine still applies events.
    let (status, _) = t.get("/v1/queues/sales").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = t
        .events(json!({"id": "e1", "type": "agent.login", "agent": "a1"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    t.stop().await;
}

/// `POST /v1/config/preview` with `text` as TOML: the status and the JSON answer.
async fn preview_config(t: &TestDaemon, text: &str) -> (StatusCode, Value) {
    send_toml(t, reqwest::Method::POST, "/v1/config/preview", text).await
}

/// The preview tells what a `PUT` would do to the calls in flight, on a copy: the offers it
/// would make (numbered as the `PUT` then numbers them), the calls it would move, the agents
/// whose tiers change and the roster agent it leaves out (who keeps taking calls); and nothing
/// live changes until the `PUT`.
#[tokio::test]
async fn a_preview_shows_what_a_put_would_do_to_the_calls_in_flight_and_changes_nothing() {
    let base = format!(
        "{BASE}\n[[agent]]\nid = \"a2\"\naddress = \"sip:a2@pbx\"\ntiers = {{ billing = 1 }}\n"
    );
    let t = start(&base).await;
    t.apply(login("e0", "a1")).await;
    for i in 1..=3 {
        let d = t.apply(call(&format!("e{i}"), &format!("c{i}"))).await;
        assert_eq!(d[0]["type"], "queued");
    }
    let (feed_before, _) = t.poll(0, 0).await;
    // L2 allowed from the first step, a1 (free) made L2 on support, a2 left out of the roster.
    let new = BASE
        .replace(
            "steps = [ { after_s = 0, tiers = [1] }, { after_s = 600, tiers = [1, 2] } ]",
            "steps = [ { after_s = 0, tiers = [1, 2] } ]",
        )
        .replace(
            "tiers = { billing = 1 }",
            "tiers = { billing = 1, support = 2 }",
        );
    let (status, body) = preview_config(&t, &new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["valid"].clone(), body["applied"].clone()),
        (json!(true), json!(false))
    );
    let p = &body["preview"];
    assert_eq!(p["queues_changed"], json!(["support"]), "{p}");
    assert_eq!(p["queues_added"], json!([]));
    assert_eq!(p["queues_removed"], json!([]));
    let offers: Vec<&Value> = p["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["type"] == "offer")
        .collect();
    assert_eq!(offers.len(), 1, "{p}");
    assert_eq!(
        (offers[0]["interaction"].clone(), offers[0]["agent"].clone()),
        (json!("c1"), json!("a1"))
    );
    let moved = p["interactions"].as_array().unwrap();
    assert_eq!(moved.len(), 1, "{p}");
    assert_eq!(moved[0]["interaction"], "c1");
    assert_eq!(moved[0]["before"]["state"], "waiting");
    assert_eq!(moved[0]["after"]["state"], "offered");
    let agents: Vec<(Value, Value, Value)> = p["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["agent"].clone(),
                a["tiers_after"].clone(),
                a["in_roster"].clone(),
            )
        })
        .collect();
    assert_eq!(
        agents,
        vec![
            (
                json!("a1"),
                json!({"billing": 1, "support": 2}),
                json!(true)
            ),
            (json!("a2"), json!({"billing": 1}), json!(false)),
        ]
    );

    // Nothing changed: the calls wait, the config and the decision feed are as they were.
    for i in 1..=3 {
        let (_, c) = t.get(&format!("/v1/interactions/c{i}")).await;
        assert_eq!(c["state"], "waiting", "{c}");
    }
    assert_eq!(get_config(&t).await, base);
    let (feed_after, _) = t.poll(0, 0).await;
    assert_eq!(feed_after.len(), feed_before.len());

    // The PUT then does what the preview said, under the same seqs.
    let (status, applied) = put_config(&t, &new).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    let shape = |ds: &Value| -> Vec<(Value, Value, Value, Value)> {
        ds.as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["seq"].clone(),
                    d["type"].clone(),
                    d["interaction"].clone(),
                    d["agent"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&applied["decisions"]), shape(&p["decisions"]));
}

/// A change `PUT` would refuse is refused by the preview the same way (every problem, 422), and
/// the answer is the validate's.
#[tokio::test]
async fn a_preview_of_a_change_put_would_refuse_gets_the_same_error() {
    let t = start(BASE).await;
    t.apply(call("e1", "c1")).await;
    let without_support = BASE.replace(
        "[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\noffer_timeout_s = 30\nsteps = [ { after_s = 0, tiers = [1] }, { after_s = 600, tiers = [1, 2] } ]\n",
        "",
    );
    assert_ne!(without_support, BASE);
    let (status, previewed) = preview_config(&t, &without_support).await;
    let (_, validated) = validate_config(&t, &without_support).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{previewed}");
    assert_eq!(previewed["error"]["code"], "invalid_config");
    assert_eq!(previewed, validated);
}

/// `PUT /v1/config` with `If-Match: if_match`: the status, the `ETag` answered, the JSON.
async fn put_if_match(
    t: &TestDaemon,
    text: &str,
    if_match: &str,
) -> (StatusCode, Option<String>, Value) {
    let r = t
        .http
        .put(t.url("/v1/config"))
        .header("content-type", "application/toml")
        .header("if-match", if_match)
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status(), etag, r.json().await.unwrap())
}

async fn etag_of_config(t: &TestDaemon) -> String {
    let r = t.http.get(t.url("/v1/config")).send().await.unwrap();
    r.headers()
        .get("etag")
        .expect("GET /v1/config answers an ETag")
        .to_str()
        .unwrap()
        .to_string()
}

/// Two admins editing the same config: each PUTs with `If-Match` set to the `ETag` they read.
/// The first applies; the second, made against a config no longer in force, is refused 412
/// with nothing changed instead of silently undoing the first. Racing with the same tag,
/// exactly one wins. `*` matches any config; the preview names the tag it worked against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_refuses_a_change_made_against_a_config_no_longer_in_force() {
    let t = start(BASE).await;
    let read = etag_of_config(&t).await;
    assert_eq!(read.len(), 66, "{read}");
    let (_, previewed) = preview_config(&t, BASE).await;
    assert_eq!(previewed["preview"]["config_etag"], read.as_str());

    let first = BASE.replace("offer_timeout_s = 30", "offer_timeout_s = 25");
    let second = BASE.replace("offer_timeout_s = 30", "offer_timeout_s = 40");
    let (status, etag, body) = put_if_match(&t, &first, &read).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = etag.expect("the PUT answers the new config's ETag");
    assert_eq!(now, etag_of_config(&t).await);
    assert_ne!(now, read);

    let (status, _, body) = put_if_match(&t, &second, &read).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["error"]["code"], "precondition_failed");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&now),
        "{body}"
    );
    assert_eq!(
        get_config(&t).await,
        first,
        "the stale change was not applied"
    );

    // Same tag, two at once: exactly one applies.
    let third = BASE.replace("offer_timeout_s = 30", "offer_timeout_s = 50");
    let (a, b) = tokio::join!(
        put_if_match(&t, &second, &now),
        put_if_match(&t, &third, &now)
    );
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        vec![StatusCode::OK, StatusCode::PRECONDITION_FAILED]
    );

    // A tag that can never match is the request's mistake: 400, saying how to send it.
    let bare = now.trim_matches('"').to_string();
    for (bad, says) in [
        (format!("W/{now}"), "weak"),
        (bare, "not an entity-tag"),
        ("garbage".to_string(), "not an entity-tag"),
    ] {
        let (status, _, body) = put_if_match(&t, &second, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_header", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(says) && message.contains("quotes included"),
            "{message}"
        );
    }
    // `*` matches whatever is in force; a list matches any of its tags.
    let (status, _, body) = put_if_match(&t, BASE, "*").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let base_tag = etag_of_config(&t).await;
    let (status, _, body) = put_if_match(&t, &first, &format!("\"0000\", {base_tag}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    t.stop().await;
}

/// A `PUT` is not written to the config file, and says so in its notes when the daemon runs
/// from one: the next reload of the file replaces it (as it does, here by SIGHUP).
#[tokio::test]
async fn a_put_says_it_is_not_written_to_the_file_a_reload_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tierline.toml");
    std::fs::write(&path, BASE).unwrap();
    let mut options = DaemonOptions::new(tierline::config::load(&path).unwrap());
    options.config_path = Some(path.clone());
    let t = TestDaemon::start(options).await;
    let (status, body) = put_config(&t, &a1_also_on_support()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let notes: Vec<&str> = body["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(&format!("not written to {}", path.display()))),
        "{notes:?}"
    );
    // The file is edited (a comment): the reload applies the file, not the PUT.
    std::fs::write(&path, format!("{BASE}# edited\n")).unwrap();
    assert!(t.daemon().sighup().await.unwrap().applied);
    assert_eq!(get_config(&t).await, format!("{BASE}# edited\n"));
    t.stop().await;
}

/// A problem found against the live state names the line where the text writes its field, as
/// the file's own problems do (it came with no line).
#[tokio::test]
async fn a_live_state_problem_names_the_line_of_its_field() {
    let t = start(BASE).await;
    t.apply(call("e1", "c1")).await;
    let no_voice = BASE.replacen("channels = [\"voice\"]", "channels = [\"chat\"]", 1);
    let line = no_voice
        .lines()
        .position(|l| l == "channels = [\"chat\"]")
        .unwrap()
        + 1;
    for (status, body) in [
        validate_config(&t, &no_voice).await,
        put_config(&t, &no_voice).await,
        preview_config(&t, &no_voice).await,
    ] {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let problem = &body["error"]["problems"][0];
        assert_eq!(problem["field"], "queue[0].channels", "{body}");
        assert!(
            problem["message"]
                .as_str()
                .unwrap()
                .contains("no longer serve voice"),
            "{body}"
        );
        assert_eq!(problem["line"], line, "{body}");
    }
    t.stop().await;
}
