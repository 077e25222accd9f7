//! Who may call what: HMAC-SHA256 signatures on inbound webhooks, bearer tokens with `read` and
//! `admin` roles on everything else, and the signer used for outbound webhooks.
//!
//! Secrets and tokens come from the environment variables or files that `[auth]` names
//! (`super::secret`; comma-separated values, so secrets can rotate: several are accepted at
//! once). They are never logged and error messages never say which secret or which byte failed.
//! Comparisons are constant-time (`Mac::verify_slice` for signatures, `subtle` over SHA-256
//! digests for tokens).

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::config::daemon::AuthConfig;

use super::error::ApiError;
use super::secret::{EnvLookup, SecretError, SecretSetting};

/// The signature header on inbound and outbound webhooks.
pub const SIGNATURE_HEADER: &str = "tierline-signature";

/// Signed timestamps further than this from our clock (either way) are refused as replays.
pub const REPLAY_WINDOW_S: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// GET endpoints: decisions, queues, agents, interactions, config, wallboards.
    Read,
    /// Everything `read` may, plus config changes and forced agent state.
    Admin,
}

/// Why a webhook signature was refused (the 401 reason; deliberately coarse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("missing Tierline-Signature header")]
    Missing,
    #[error(
        "malformed Tierline-Signature header: expected `t=<unix seconds>,v1=<HMAC-SHA256 as 64 hex digits>` (one `t`, at most 8 `v1`, each well formed)"
    )]
    Malformed,
    #[error("signature timestamp is outside the 300 s replay window")]
    Stale,
    #[error(
        "more than 8 `v1=` signatures in the Tierline-Signature header (a sender rotating \
         secrets needs one per secret in use)"
    )]
    TooMany,
    #[error("no signature matches any configured secret")]
    Mismatch,
    #[error(
        "the Tierline-Signature header is given more than once: send it once (a sender rotating \
         secrets puts one `v1=` per secret in that one header); a proxy may have added one"
    )]
    Repeated,
}

impl SignatureError {
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Stale => "signature_stale",
            SignatureError::TooMany | SignatureError::Repeated => "signature_malformed",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
    }
}

/// The secrets and tokens in force. (`PartialEq` tells a reload whether a rotation changed
/// anything; it is never used to check a presented credential.)
#[derive(Default, PartialEq, Eq)]
pub struct AuthKeys {
    webhook_secrets: Vec<Vec<u8>>,
    read_tokens: Vec<[u8; 32]>,
    admin_tokens: Vec<[u8; 32]>,
}

impl std::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthKeys")
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("read_tokens", &self.read_tokens.len())
            .field("admin_tokens", &self.admin_tokens.len())
            .finish()
    }
}

/// Auth keys shared by the handlers and swapped by reloads.
pub type AuthCell = Arc<RwLock<Arc<AuthKeys>>>;

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl AuthKeys {
    /// Read the env vars and files `cfg` names (`env` is `std::env::var` in the daemon). Every
    /// named source must give at least one value (fail closed).
    pub fn from_config(cfg: &AuthConfig, env: EnvLookup<'_>) -> Result<AuthKeys, SecretError> {
        let read = |name: &str,
                    var: &Option<String>,
                    file: &Option<std::path::PathBuf>|
         -> Result<Vec<String>, SecretError> {
            match SecretSetting::from_pair("auth", name, var.as_deref(), file.as_deref())? {
                None => Ok(Vec::new()),
                Some(setting) => setting.read_list(env),
            }
        };
        Ok(AuthKeys {
            webhook_secrets: read(
                "webhook_secrets",
                &cfg.webhook_secrets_env,
                &cfg.webhook_secrets_file,
            )?
            .into_iter()
            .map(String::into_bytes)
            .collect(),
            read_tokens: read("read_tokens", &cfg.read_tokens_env, &cfg.read_tokens_file)?
                .iter()
                .map(|t| digest(t.as_bytes()))
                .collect(),
            admin_tokens: read(
                "admin_tokens",
                &cfg.admin_tokens_env,
                &cfg.admin_tokens_file,
            )?
            .iter()
            .map(|t| digest(t.as_bytes()))
            .collect(),
        })
    }

    /// Keys built directly (tests, embedding).
    pub fn new(webhook_secrets: &[&str], read_tokens: &[&str], admin_tokens: &[&str]) -> AuthKeys {
        AuthKeys {
            webhook_secrets: webhook_secrets
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            read_tokens: read_tokens.iter().map(|t| digest(t.as_bytes())).collect(),
            admin_tokens: admin_tokens.iter().map(|t| digest(t.as_bytes())).collect(),
        }
    }

    pub fn signatures_required(&self) -> bool {
        !self.webhook_secrets.is_empty()
    }

    pub fn has_admin_tokens(&self) -> bool {
        !self.admin_tokens.is_empty()
    }

    pub fn tokens_required(&self) -> bool {
        !self.read_tokens.is_empty() || !self.admin_tokens.is_empty()
    }

    /// Check `Tierline-Signature: t=<unix s>,v1=<hex>[,v1=<hex>…]` over `"<t>.<body>"` against
    /// every configured secret. Without secrets everything passes.
    pub fn verify_signature(
        &self,
        header: Option<&str>,
        body: &[u8],
        now_s: u64,
    ) -> Result<(), SignatureError> {
        if self.webhook_secrets.is_empty() {
            return Ok(());
        }
        let header = header.ok_or(SignatureError::Missing)?;
        let (t, t_text, signatures) = parse_signature(header)?;
        if t.abs_diff(now_s) > REPLAY_WINDOW_S {
            return Err(SignatureError::Stale);
        }
        for secret in &self.webhook_secrets {
            let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
                continue;
            };
            mac.update(t_text.as_bytes());
            mac.update(b".");
            mac.update(body);
            for signature in &signatures {
                if mac.clone().verify_slice(signature).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(SignatureError::Mismatch)
    }

    /// Which role a presented bearer token has, if any (constant-time per token).
    fn role_of(&self, token: &str) -> Option<Role> {
        let presented = digest(token.as_bytes());
        let matches = |set: &[[u8; 32]]| {
            set.iter()
                .fold(subtle::Choice::from(0), |acc, t| acc | t.ct_eq(&presented))
                .into()
        };
        if matches(&self.admin_tokens) {
            Some(Role::Admin)
        } else if matches(&self.read_tokens) {
            Some(Role::Read)
        } else {
            None
        }
    }

    /// Allow the request if it carries a token with at least role `need` (401 without a valid
    /// token, 403 with a valid token of too small a role). Without tokens everything passes.
    pub fn authorize(&self, headers: &HeaderMap, need: Role) -> Result<(), ApiError> {
        self.authorize_with(headers, need, Schemes::Bearer)
    }

    /// `authorize` for an endpoint that takes the token in any of `schemes`. One `Authorization`
    /// header only: of two, HTTP says nothing about which counts (a proxy may read the other),
    /// so a request with more than one is refused, as one with two `Content-Type`s is.
    pub fn authorize_with(
        &self,
        headers: &HeaderMap,
        need: Role,
        schemes: Schemes,
    ) -> Result<(), ApiError> {
        if !self.tokens_required() {
            return Ok(());
        }
        let unauthorized = |message: &str| {
            let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
            e.challenge = Some(schemes);
            e
        };
        let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(unauthorized(schemes.missing()));
        };
        if values.next().is_some() {
            return Err(unauthorized(
                "the Authorization header is given more than once: send it once, with one token",
            ));
        }
        let value = value.to_str().ok();
        let (token, unknown) = match value.and_then(|v| credentials(v, "Bearer")) {
            Some(token) => (Cow::Borrowed(token), "the bearer token is not recognised"),
            None => match value.filter(|_| schemes == Schemes::BearerOrBasic) {
                Some(v) => basic_password(v).map(|p| {
                    (
                        Cow::Owned(p),
                        "the Basic password is not a recognised token",
                    )
                }),
                None => None,
            }
            .ok_or_else(|| unauthorized(schemes.malformed()))?,
        };
        match self.role_of(&token) {
            None => Err(unauthorized(unknown)),
            Some(role) if role >= need => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this endpoint needs a token with the admin role",
            )),
        }
    }
}

/// How an endpoint takes its token in the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schemes {
    /// `Bearer <token>`: every endpoint but the Kamailio adapter's.
    Bearer,
    /// `Bearer <token>`, or `Basic` credentials with the token as the password: Kamailio's
    /// http_client cannot add a Bearer header to `http_connect`, but sends the user and password
    /// of its connection URL (`http://kamailio:TOKEN@host/...`).
    BearerOrBasic,
}

impl Schemes {
    /// The 401's `WWW-Authenticate`: every scheme the endpoint takes (RFC 9110 §11.6.1), so a
    /// client that answers challenges (libcurl's `CURLAUTH_ANY`) finds the one it can send.
    pub fn challenge(self) -> &'static str {
        match self {
            Schemes::Bearer => "Bearer realm=\"tierline\"",
            Schemes::BearerOrBasic => "Bearer realm=\"tierline\", Basic realm=\"tierline\"",
        }
    }

    /// The 401's message for a request without an `Authorization` header.
    fn missing(self) -> &'static str {
        match self {
            Schemes::Bearer => "this endpoint needs `Authorization: Bearer <token>`",
            Schemes::BearerOrBasic => {
                "this endpoint needs `Authorization: Bearer <token>`, or Basic credentials with \
                 the token as the password (`Authorization: Basic <base64 of user:token>`, which \
                 Kamailio sends for a connection URL `http://kamailio:TOKEN@host/...`)"
            }
        }
    }

    /// The 401's message for an `Authorization` header of another form.
    fn malformed(self) -> &'static str {
        match self {
            Schemes::Bearer => "the Authorization header is not `Bearer <token>`",
            Schemes::BearerOrBasic => {
                "the Authorization header is neither `Bearer <token>` nor Basic credentials with \
                 the token as the password (`Basic <base64 of user:token>`)"
            }
        }
    }
}

/// The password of an `Authorization: Basic base64(user:password)` value.
fn basic_password(value: &str) -> Option<String> {
    let encoded = credentials(value, "Basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

/// `(t, t as written, signatures)`: the HMAC covers the `t` text the sender wrote (which it
/// signed), the number is for the replay window.
/// The most `v1=` values one header may carry: each is checked against every secret, so the
/// number is bounded rather than left to the header size limit (16 KiB, ≈ 230 values).
pub const MAX_SIGNATURES: usize = 8;

fn parse_signature(header: &str) -> Result<(u64, &str, Vec<Vec<u8>>), SignatureError> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key.trim() {
            "t" => {
                if t.is_some() {
                    return Err(SignatureError::Malformed);
                }
                let text = value.trim();
                let seconds = text.parse::<u64>().map_err(|_| SignatureError::Malformed)?;
                t = Some((seconds, text));
            }
            "v1" => {
                let bytes = hex::decode(value.trim()).map_err(|_| SignatureError::Malformed)?;
                if bytes.len() != 32 {
                    return Err(SignatureError::Malformed);
                }
                if signatures.len() == MAX_SIGNATURES {
                    return Err(SignatureError::TooMany);
                }
                signatures.push(bytes);
            }
            // Other schemes (a future v2) are ignored so senders can add them early.
            _ => {}
        }
    }
    match t {
        Some((t, text)) if !signatures.is_empty() => Ok((t, text, signatures)),
        _ => Err(SignatureError::Malformed),
    }
}

/// The `Tierline-Signature` value for `body` signed with `secret` at `t` (Unix seconds).
pub fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(signature(secret, t, body)))
}

fn signature(secret: &[u8], t: u64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for HMAC.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The credentials of an `Authorization` header value if its scheme is `scheme`: the scheme is
/// matched without regard to case and may be followed by any spaces or tabs (RFC 9110 §11.4).
pub(crate) fn credentials<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let value = value.trim_start();
    let split = value.find([' ', '\t'])?;
    let (given, rest) = value.split_at(split);
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn the_scheme_is_matched_without_case_and_any_blanks_may_follow_it() {
        assert_eq!(credentials("Bearer tok", "Bearer"), Some("tok"));
        assert_eq!(credentials("BEARER tok", "Bearer"), Some("tok"));
        assert_eq!(credentials("bearer \t tok ", "Bearer"), Some("tok"));
        assert_eq!(credentials("Bearer\ttok", "Bearer"), Some("tok"));
        assert_eq!(credentials("Bearertok", "Bearer"), None);
        assert_eq!(credentials("Bearer ", "Bearer"), None);
        assert_eq!(credentials("Basic dXNlcjpwdw==", "Bearer"), None);
    }

    #[test]
    fn basic_credentials_carry_the_token_as_the_password() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("kamailio:s3cret");
        assert_eq!(
            basic_password(&format!("Basic {encoded}")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(basic_password("Basic !!!"), None);
        assert_eq!(basic_password(&format!("Bearer {encoded}")), None);
    }

    #[test]
    fn the_signature_covers_t_as_the_sender_wrote_it() {
        // A sender that writes `t` with a leading zero or plus sign signs that text.
        let keys = AuthKeys::new(&["s3cret"], &[], &[]);
        for written in [format!("0{NOW}"), format!("+{NOW}")] {
            let mut mac = HmacSha256::new_from_slice(b"s3cret").unwrap();
            mac.update(format!("{written}.{{}}").as_bytes());
            let header = format!(
                "t={written},v1={}",
                hex::encode(mac.finalize().into_bytes())
            );
            assert_eq!(
                keys.verify_signature(Some(&header), b"{}", NOW),
                Ok(()),
                "{header}"
            );
        }
    }

    #[test]
    fn a_correctly_signed_body_is_accepted() {
        let keys = AuthKeys::new(&["s3cret"], &[], &[]);
        let header = sign(b"s3cret", NOW, b"{}");
        assert_eq!(keys.verify_signature(Some(&header), b"{}", NOW), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_is_a_mismatch() {
        let keys = AuthKeys::new(&["s3cret"], &[], &[]);
        let header = sign(b"s3cret", NOW, b"{}");
        assert_eq!(
            keys.verify_signature(Some(&header), b"{ }", NOW),
            Err(SignatureError::Mismatch)
        );
        let other = sign(b"guess", NOW, b"{}");
        assert_eq!(
            keys.verify_signature(Some(&other), b"{}", NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rotation_accepts_any_secret_and_any_of_several_signatures() {
        let keys = AuthKeys::new(&["old", "new"], &[], &[]);
        let by_new = sign(b"new", NOW, b"x");
        assert_eq!(keys.verify_signature(Some(&by_new), b"x", NOW), Ok(()));
        let wrong = hex::encode([0u8; 32]);
        let good = hex::encode(signature(b"old", NOW, b"x"));
        let both = format!("t={NOW},v1={wrong},v1={good}");
        assert_eq!(keys.verify_signature(Some(&both), b"x", NOW), Ok(()));
    }

    #[test]
    fn at_most_eight_signatures_are_checked() {
        let keys = AuthKeys::new(&["old", "new"], &[], &[]);
        let wrong = hex::encode([0u8; 32]);
        let good = hex::encode(signature(b"old", NOW, b"x"));
        let with = |wrongs: usize| {
            let mut header = format!("t={NOW}");
            for _ in 0..wrongs {
                header.push_str(&format!(",v1={wrong}"));
            }
            header.push_str(&format!(",v1={good}"));
            keys.verify_signature(Some(&header), b"x", NOW)
        };
        assert_eq!(with(MAX_SIGNATURES - 1), Ok(()));
        assert_eq!(with(MAX_SIGNATURES), Err(SignatureError::TooMany));
        assert_eq!(SignatureError::TooMany.code(), "signature_malformed");
    }

    #[test]
    fn a_timestamp_older_than_five_minutes_is_a_replay() {
        let keys = AuthKeys::new(&["s"], &[], &[]);
        let old = sign(b"s", NOW - 301, b"x");
        assert_eq!(
            keys.verify_signature(Some(&old), b"x", NOW),
            Err(SignatureError::Stale)
        );
        let edge = sign(b"s", NOW - 300, b"x");
        assert_eq!(keys.verify_signature(Some(&edge), b"x", NOW), Ok(()));
    }

    #[test]
    fn malformed_and_missing_headers_are_named_as_such() {
        let keys = AuthKeys::new(&["s"], &[], &[]);
        assert_eq!(
            keys.verify_signature(None, b"x", NOW),
            Err(SignatureError::Missing)
        );
        for bad in [
            "v1=00",
            "t=abc,v1=00",
            &format!("t={NOW}"),
            "garbage",
            &format!("t={NOW},v1=zz"),
        ] {
            assert_eq!(
                keys.verify_signature(Some(bad), b"x", NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn without_secrets_nothing_is_checked() {
        let keys = AuthKeys::default();
        assert_eq!(keys.verify_signature(None, b"x", NOW), Ok(()));
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    #[test]
    fn tokens_have_roles_401_without_403_with_the_wrong_one() {
        let keys = AuthKeys::new(&[], &["r1"], &["a1"]);
        assert_eq!(
            keys.authorize(&HeaderMap::new(), Role::Read)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            keys.authorize(&bearer("nope"), Role::Read)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert!(keys.authorize(&bearer("r1"), Role::Read).is_ok());
        assert_eq!(
            keys.authorize(&bearer("r1"), Role::Admin)
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        assert!(keys.authorize(&bearer("a1"), Role::Admin).is_ok());
        assert!(keys.authorize(&bearer("a1"), Role::Read).is_ok());
    }

    #[test]
    fn env_vars_named_in_auth_must_be_set() {
        let cfg = AuthConfig {
            webhook_secrets_env: Some("HOOK".into()),
            admin_tokens_env: Some("ADMIN".into()),
            ..AuthConfig::default()
        };
        let env = |name: &str| match name {
            "HOOK" => Some(" a , b ".to_string()),
            _ => None,
        };
        let err = AuthKeys::from_config(&cfg, &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "auth.admin_tokens_env names environment variable `ADMIN`, which is not set or is empty"
        );
        let env = |name: &str| Some(format!("{name}-1,{name}-2"));
        let keys = AuthKeys::from_config(&cfg, &env).unwrap();
        assert_eq!(keys.webhook_secrets.len(), 2);
        assert!(keys.authorize(&bearer("ADMIN-2"), Role::Admin).is_ok());
    }

    #[test]
    fn tokens_from_a_file_work_like_tokens_from_the_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-tokens");
        std::fs::write(&path, "old-admin, new-admin\n").unwrap();
        let cfg = AuthConfig {
            read_tokens_env: Some("READ".into()),
            admin_tokens_file: Some(path),
            ..AuthConfig::default()
        };
        let env = |_: &str| Some("wallboard".to_string());
        let keys = AuthKeys::from_config(&cfg, &env).unwrap();
        assert!(keys.authorize(&bearer("new-admin"), Role::Admin).is_ok());
        assert!(keys.authorize(&bearer("old-admin"), Role::Admin).is_ok());
        assert!(keys.authorize(&bearer("wallboard"), Role::Read).is_ok());
        assert_eq!(
            keys.authorize(&bearer("new"), Role::Read)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn a_missing_token_file_fails_closed_and_both_sources_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone");
        let cfg = AuthConfig {
            read_tokens_file: Some(path.clone()),
            ..AuthConfig::default()
        };
        let err = AuthKeys::from_config(&cfg, &|_: &str| None).unwrap_err();
        assert!(
            matches!(&err, SecretError::Unreadable { field, path: p, .. }
                if field == "auth.read_tokens_file" && p == &path.display().to_string()),
            "{err}"
        );
        let cfg = AuthConfig {
            read_tokens_env: Some("READ".into()),
            read_tokens_file: Some(path),
            ..AuthConfig::default()
        };
        let err = AuthKeys::from_config(&cfg, &|_: &str| Some("t".into())).unwrap_err();
        assert!(matches!(err, SecretError::BothSet { .. }), "{err}");
    }
}
