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

#[test]
fn settings_without_effect_pass_with_a_note_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("noted.toml");
    std::fs::write(
        &path,
        "[channels.voice]\ncapacity = 2\n\n[[queue]]\nid = \"support\"\n\
         closed_target = \"sip:voicemail@pbx\"\n\n[[agent]]\nid = \"a1\"\n\
         address = \"sip:a1@pbx\"\ntiers = { support = 1 }\ncapacity = { voice = 3 }\n",
    )
    .expect("write config");
    let (code, stdout, stderr) = check_config(&path);
    assert_eq!(code, 0, "stderr: {stderr}");
    let notes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("note: ")).collect();
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
