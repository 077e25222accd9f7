//! `tierline check-config PATH`: a summary line per queue and exit 0, or every error on stderr
//! and exit 2.

use std::path::Path;
use std::process::Command;

fn check_config(path: &Path) -> (i32, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_tierline"))
        .arg("check-config")
        .arg(path))
}

/// Run `command`: exit code, stdout, stderr.
fn run(command: &mut Command) -> (i32, String, String) {
    let out = command.output().expect("run tierline");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_config_passes_with_one_line_per_queue() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tierline.toml");
    let (code, stdout, stderr) = check_config(&path);
    assert_eq!(code, 0, "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[0],
        "support: channels=voice,chat,email strategy=longest-idle \
         steps=0s:[1] 30s:[1,2] 60s:[1,2,3]+5 agents=L1=3 L2=2 L3=1 \
         max_wait=600s→sip:voicemail@pbx"
    );
    assert!(lines[1].starts_with("complaints: "), "{stdout}");
    assert!(lines[1].contains("steps=0s:[3] "), "{stdout}");
    assert!(lines[2].starts_with("sales: "), "{stdout}");
    assert!(lines[2].ends_with("schedule=Europe/London"), "{stdout}");
}

/// `check-config` on `text`, which must pass: its `note:` lines, and the whole output.
fn notes_of(text: &str) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("noted.toml");
    std::fs::write(&path, text).expect("write config");
    let (code, stdout, stderr) = check_config(&path);
    assert_eq!(code, 0, "stderr: {stderr}");
    let notes = stdout
        .lines()
        .filter(|l| l.starts_with("note: "))
        .map(str::to_string)
        .collect();
    (notes, stdout)
}

#[test]
fn settings_without_effect_pass_with_a_note_each() {
    let (notes, stdout) = notes_of(
        "[channels.voice]\ncapacity = 2\n\n[[queue]]\nid = \"support\"\n\
         closed_target = \"sip:voicemail@pbx\"\n\n[[agent]]\nid = \"a1\"\n\
         address = \"sip:a1@pbx\"\ntiers = { support = 1 }\ncapacity = { voice = 3 }\n",
    );
    assert_eq!(
        notes,
        [
            "note: channels.voice.capacity = 2 has no effect: voice is exclusive, so an agent \
             holding one voice interaction is offered nothing else",
            "note: agent `a1`: capacity.voice = 3 has no effect: voice is exclusive, so the agent \
             never holds a second one",
            "note: queue `support`: closed_target = \"sip:voicemail@pbx\" has no effect: the \
             queue has no schedule, so it is never closed",
        ],
        "{stdout}"
    );
    assert!(stdout.starts_with("support: "), "{stdout}");
}

/// Daemon settings that work against the daemon: readers allowed every connection, a decision
/// log smaller than one batch can fill, a journal that never syncs. Noted after the routing
/// notes; the defaults have none.
#[test]
fn daemon_settings_that_work_against_the_daemon_pass_with_a_note_each() {
    let queue = "[[queue]]\nid = \"support\"\n";
    let (notes, stdout) = notes_of(queue);
    assert!(notes.is_empty(), "{stdout}");
    let (notes, stdout) = notes_of(&format!(
        "[server]\nmax_connections = 100\nmax_feed_readers = 100\ndecision_log = 5000\n\n\
         [journal]\nsync = \"none\"\n\n{queue}"
    ));
    assert_eq!(
        notes,
        [
            "note: the feed reader limit 100 is not below server.max_connections = 100: waiting \
             long-polls and SSE streams, which hold their connection, can take every \
             connection, and events and health probes then wait for one to close",
            "note: server.decision_log = 5000 is below the 10000 events one request may carry: \
             a single batch can decide more than the log keeps, and a reader that was caught up \
             then gets 410 decisions_gone for the rest",
            "note: journal.sync = \"none\": answers are given before anything reaches the disk, \
             so a crash or power loss loses events that were acknowledged (for tests and \
             simulations)",
        ],
        "{stdout}"
    );
    // 0 is half of max_connections, at least 1: with one connection, that one.
    let (notes, stdout) = notes_of(&format!("[server]\nmax_connections = 1\n\n{queue}"));
    assert_eq!(
        notes,
        ["note: the feed reader limit 1 (server.max_feed_readers = 0: half of it, at least 1) is \
          not below server.max_connections = 1: waiting long-polls and SSE streams, which hold \
          their connection, can take every connection, and events and health probes then wait \
          for one to close"],
        "{stdout}"
    );
    // One fewer reader than connections is fine.
    let (notes, stdout) = notes_of(&format!(
        "[server]\nmax_connections = 100\nmax_feed_readers = 99\n\n{queue}"
    ));
    assert!(notes.is_empty(), "{stdout}");
}

/// Parts of a valid config nothing can ever use: a step after the queue's own overflow, a last
/// step's `skip_if_no_agents`, a schedule never open, rules after one that matches everything.
#[test]
fn parts_no_call_can_reach_pass_with_a_note_each() {
    let (notes, stdout) = notes_of(
        r#"
[[queue]]
id = "a"
channels = ["voice", "chat", "email", "callback"]
max_wait_s = 30
overflow = { target = "sip:vm@pbx" }
steps = [{ after_s = 0, tiers = [1] }, { after_s = 30, tiers = [1, 2] },
         { after_s = 60, tiers = [1, 2, 3], skip_if_no_agents = true }]

[[queue]]
id = "b"
schedule = { tz = "UTC" }

[[rule]]
when = { x = "y" }
queue = "b"

[[rule]]
queue = "a"

[[rule]]
when = { x = "z" }
queue = "a"

[[rule]]
when = { x = "w" }
queue = "b"
"#,
    );
    assert_eq!(
        notes,
        [
            "note: queue `a`: steps[1] (at 30s), steps[2] (at 60s) are never reached: the queue \
             overflows at max_wait_s = 30s first",
            "note: queue `a`: steps[2].skip_if_no_agents has no effect: it is the last step, so \
             there is no step to move on to",
            "note: queue `b`: its schedule has no open hours: every arrival is rejected `closed`",
            "note: rule[1] has an empty `when` and its queue serves every channel, so it takes \
             every arrival: rule[2] to rule[3] after it are never reached",
        ],
        "{stdout}"
    );
    // A step after the overflow is still reached at once through `skip_if_no_agents` on the
    // step before it (nobody of that step's tiers logged in): no note for it, nor for the
    // one after it, which the same skip chain reaches.
    let (notes, _) = notes_of(
        r#"
[[queue]]
id = "a"
max_wait_s = 30
overflow = { target = "sip:vm@pbx" }
steps = [{ after_s = 0, tiers = [1], skip_if_no_agents = true },
         { after_s = 45, tiers = [2], skip_if_no_agents = true },
         { after_s = 60, tiers = [3] }]
"#,
    );
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn a_broken_config_exits_2_with_every_error_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[queue]]\nid = \"support\"\nstrategy = \"fastest\"\n[[rule]]\nqueue = \"nowhere\"\n",
    )
    .expect("write");
    let (code, stdout, stderr) = check_config(&path);
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "{stdout}");
    let shown = path.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{shown}:3:1: queue[0].strategy: unknown strategy")),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{shown}:5:1: rule[0].queue: unknown queue `nowhere`"
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_exits_2_saying_it_cannot_be_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.toml");
    let (code, _, stderr) = check_config(&path);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
}

/// A config `serve` could not journal (its text, with `"` doubled as a JSON string, is larger
/// than a journal record) is refused by `check-config` too, not passed (exit 0) and then refused
/// at start.
#[test]
fn a_config_too_large_to_journal_fails_the_check_as_it_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    let mut text = String::from("[[queue]]\nid = \"q\"\n");
    let line = format!("#{}\n", "\"".repeat(1000));
    for _ in 0..20_000 {
        text.push_str(&line);
    }
    std::fs::write(&path, text).unwrap();
    let (code, stdout, stderr) = check_config(&path);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("big.toml"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}

/// `check-config --secrets PATH` with the environment `env` (nothing else inherited).
fn check_secrets(path: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_tierline"))
        .arg("check-config")
        .arg("--secrets")
        .arg(path)
        .env_clear()
        .envs(env.iter().copied()))
}

#[test]
fn with_secrets_every_unreadable_secret_and_tls_file_is_named_and_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("admin-tokens");
    std::fs::write(&token_file, "admin-token\n").expect("write token file");
    let missing = dir.path().join("no-such-secret");
    let path = dir.path().join("secrets.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\ntls_cert = \"{cert}\"\ntls_key = \"{cert}\"\n\n\
             [auth]\nwebhook_secrets_env = \"HOOK_SECRETS\"\nread_tokens_file = \"{missing}\"\n\
             admin_tokens_file = \"{tokens}\"\n\n\
             [[subscriber]]\nname = \"pbx\"\nurl = \"http://127.0.0.1:9/hook\"\n\
             secret_env = \"PBX_SECRET\"\n\n\
             [[queue]]\nid = \"support\"\n",
            cert = dir.path().join("no-such-cert.pem").display(),
            missing = missing.display(),
            tokens = token_file.display(),
        ),
    )
    .expect("write config");

    // Validation alone passes: the file is well formed.
    let (code, stdout, stderr) = check_config(&path);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.starts_with("support: "), "{stdout}");

    // Read as the daemon would: the unset env vars, the missing token file and the missing
    // certificate, each on a line of its own; the readable admin token file is not named.
    let (code, stdout, stderr) = check_secrets(&path, &[]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.is_empty(), "no summary when secrets fail: {stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(lines[0].contains("HOOK_SECRETS"), "{stderr}");
    assert!(lines[1].contains("no-such-secret"), "{stderr}");
    assert!(lines[2].contains("PBX_SECRET"), "{stderr}");
    assert!(lines[3].contains("no-such-cert.pem"), "{stderr}");
    assert!(!stderr.contains("admin-tokens"), "{stderr}");

    // With the env vars set and the token file there (TLS dropped), it passes.
    let text = std::fs::read_to_string(&path).expect("read config");
    let text = text
        .lines()
        .filter(|l| !l.starts_with("tls_"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            &missing.display().to_string(),
            &token_file.display().to_string(),
        );
    std::fs::write(&path, text).expect("rewrite config");
    let (code, stdout, stderr) = check_secrets(
        &path,
        &[
            ("HOOK_SECRETS", "hook-secret"),
            ("PBX_SECRET", "pbx-secret"),
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.starts_with("support: "), "{stdout}");
}

/// A self-signed certificate for `localhost` valid from `from` to `to` (midnight UTC), and its key,
/// written to `dir` as `<name>.crt` and `<name>.key`.
fn certificate_dated(
    dir: &Path,
    name: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> (std::path::PathBuf, std::path::PathBuf) {
    use chrono::Datelike;
    let ymd = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = ymd(from);
    params.not_after = ymd(to);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// `serve` starts with a certificate that expired, is not yet valid or expires within 14 days,
/// and warns in its log; `check-config --secrets` prints the same warning on stderr and, as
/// `serve` starts, still passes (exit 0 with the summary). A certificate with time to run gets
/// no warning.
#[test]
fn with_secrets_a_certificate_serve_would_warn_about_is_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let today = chrono::Utc::now().date_naive();
    let days = chrono::Days::new;
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let cases = [
        (
            "expired",
            date(2020, 1, 2),
            date(2021, 3, 4),
            Some("expired"),
        ),
        (
            "future",
            date(2090, 1, 2),
            date(2091, 3, 4),
            Some("is not valid until 2090-01-02 00:00:00 UTC"),
        ),
        (
            "expiring",
            today - days(30),
            today + days(6),
            Some("expires in"),
        ),
        ("fine", today - days(30), today + days(100), None),
    ];
    for (name, from, to, expected) in cases {
        let (cert, key) = certificate_dated(dir.path(), name, from, to);
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n[[queue]]\nid = \"support\"\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let (code, stdout, stderr) = check_secrets(&path, &[]);
        assert_eq!(code, 0, "{name}: stderr: {stderr}");
        assert!(stdout.starts_with("support: "), "{name}: {stdout}");
        match expected {
            Some(expected) => {
                let lines: Vec<&str> = stderr.lines().collect();
                assert_eq!(lines.len(), 1, "{name}: {stderr}");
                assert!(lines[0].starts_with("warning: "), "{name}: {stderr}");
                assert!(
                    lines[0].contains(&format!("TLS certificate {}", cert.display())),
                    "{name}: {stderr}"
                );
                assert!(lines[0].contains(expected), "{name}: {stderr}");
            }
            None => assert!(stderr.is_empty(), "{name}: {stderr}"),
        }
    }
}
