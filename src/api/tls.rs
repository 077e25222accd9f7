//! HTTPS with rustls: loading PEM certificate chains and keys, a reloadable acceptor (SIGHUP
//! swaps it without dropping connections), and an axum `Listener` that does handshakes off the
//! accept loop.
//!
//! Handshakes run in their own tasks with a deadline (`Handshakes::timeout`: the daemon's
//! `idle_timeout_ms`, at most `HANDSHAKE_TIMEOUT`) so a slow or silent client never holds up the
//! others; at most `Handshakes::at_once` (the daemon's `max_connections`) run at once and further
//! connections wait in the kernel backlog. Failed handshakes are logged and dropped. A client
//! that speaks plain HTTP to the TLS port gets a plain-HTTP 400 `tls_required` (JSON, like every
//! API error) instead of a TLS alert.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a TLS handshake may take, whatever the idle timeout.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How handshakes are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Handshakes {
    /// Deadline of one handshake, from the connection's accept.
    pub timeout: Duration,
    /// Handshakes in progress at once (at least 1).
    pub at_once: usize,
}

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("cannot read TLS key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("TLS certificate {cert} and key {key} do not form a usable server config: {message}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// The validity dates of a certificate, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// The dates within which every certificate of the chain as sent is valid (the latest
    /// `notBefore`, the earliest `notAfter`: an intermediate that expires first makes clients
    /// refuse the chain as surely as the leaf), or `None` if rustls accepted a certificate this
    /// parser cannot read.
    pub fn of_chain(chain: &[CertificateDer<'_>]) -> Option<Validity> {
        let mut dates = chain.iter().map(Validity::of);
        let first = dates.next()??;
        dates.try_fold(first, |a, v| {
            let v = v?;
            Some(Validity {
                not_before: a.not_before.max(v.not_before),
                not_after: a.not_after.min(v.not_after),
            })
        })
    }

    /// One certificate's dates, or `None` if this parser cannot read it.
    pub fn of(cert: &CertificateDer<'_>) -> Option<Validity> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let v = cert.validity();
        Some(Validity {
            not_before: v.not_before.timestamp(),
            not_after: v.not_after.timestamp(),
        })
    }

    /// What is wrong with these dates at `now` (Unix seconds), for the operator: expired, not
    /// yet valid, or expiring within `EXPIRY_WARNING_DAYS`. `None` when nothing is.
    pub fn warning(&self, path: &Path, now: i64) -> Option<String> {
        let date = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| format!("{t} (Unix seconds)"))
        };
        // Whole days, or hours under a day ("0 days" would read as "no time at all").
        let span = |secs: i64| match secs {
            s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
            s if s >= 86_400 => "1 day".to_string(),
            s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
            _ => "less than 2 hours".to_string(),
        };
        let path = path.display();
        if now > self.not_after {
            Some(format!(
                "TLS certificate {path} expired {} ago (not valid after {}): clients will \
                 refuse every connection; install a valid one and send SIGHUP",
                span(now - self.not_after),
                date(self.not_after)
            ))
        } else if now < self.not_before {
            Some(format!(
                "TLS certificate {path} is not valid until {} (in {}): clients will refuse \
                 every connection until then (or this machine's clock is wrong)",
                date(self.not_before),
                span(self.not_before - now)
            ))
        } else if self.not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
            Some(format!(
                "TLS certificate {path} expires in {} ({}): install a new one and send SIGHUP",
                span(self.not_after - now),
                date(self.not_after)
            ))
        } else {
            None
        }
    }
}

/// A certificate expiring within this many days is warned about at load and reload.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// Build a rustls server config (ring provider, TLS 1.2+1.3, ALPN h2 + http/1.1) from PEM files.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    load(cert, key).map(|(config, _)| config)
}

/// `load_server_config` and the validity dates of the chain as sent (`Validity::of_chain`).
fn load(cert: &Path, key: &Path) -> Result<(Arc<ServerConfig>, Option<Validity>), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Cert {
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert {
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.to_path_buf(),
            message: "no CERTIFICATE block found".into(),
        });
    }
    let validity = Validity::of_chain(&chain);
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: explain_key(key, e),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private_key))
        .map_err(|e| TlsError::Config {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            message: explain(&e),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), validity))
}

/// Why a key file gave no key, in words: the PEM reader's own "no items found" says neither
/// what it looked for nor what it found. An encrypted key (tierline has no passphrase to give)
/// and the certificate given as the key are named as such.
fn explain_key(path: &Path, e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    if matches!(e, Error::Io(_)) {
        return e.to_string();
    }
    // The file was just opened; read again only on this error path to say what it holds.
    let text = std::fs::read(path).unwrap_or_default();
    let holds = |marker: &[u8]| text.windows(marker.len()).any(|w| w == marker);
    if holds(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || holds(b"Proc-Type: 4,ENCRYPTED") {
        return "the private key is encrypted (passphrase-protected), and tierline cannot ask \
                for a passphrase: give it an unencrypted copy readable only by tierline's user, \
                e.g. `openssl pkey -in key.pem -out key-plain.pem`"
            .into();
    }
    match e {
        Error::NoItemsFound => {
            let mut message = "no PRIVATE KEY block found (PKCS#8, PKCS#1 RSA or SEC1 EC, \
                               unencrypted; encrypted keys are not supported)"
                .to_string();
            if holds(b"-----BEGIN CERTIFICATE-----") {
                message.push_str(
                    "; the file holds a CERTIFICATE block: is `tls_key` the certificate's path?",
                );
            }
            message
        }
        e => e.to_string(),
    }
}

/// What rustls refused a certificate and key for, in words (its own text for the common cases
/// is a debug rendering such as `Other(OtherError(UnsupportedCertVersion))`).
fn explain(e: &rustls::Error) -> String {
    use rustls::{CertificateError, Error, InconsistentKeys};
    match e {
        Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            "the private key does not belong to the certificate (the first certificate of the \
             file must be the server's own, and the key its key)"
                .into()
        }
        Error::InvalidCertificate(CertificateError::Other(other)) => {
            match other.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::UnsupportedCertVersion) => {
                    "the certificate is X.509 version 1 (or 2); only version 3 is supported: \
                     reissue it as v3, e.g. `openssl req -x509 … -addext \
                     \"subjectAltName=DNS:your.host\"`"
                        .into()
                }
                Some(w) => format!("the certificate cannot be used: {w:?}"),
                None => e.to_string(),
            }
        }
        _ => e.to_string(),
    }
}

/// The acceptor in force, swapped on reload. New connections use the new certificate; open
/// connections keep theirs.
#[derive(Clone)]
pub struct TlsCell {
    cert: PathBuf,
    key: PathBuf,
    acceptor: Arc<RwLock<(TlsAcceptor, Option<Validity>)>>,
}

impl TlsCell {
    pub fn load(cert: &Path, key: &Path) -> Result<TlsCell, TlsError> {
        let (config, validity) = load(cert, key)?;
        Ok(TlsCell {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            acceptor: Arc::new(RwLock::new((TlsAcceptor::from(config), validity))),
        })
    }

    /// Re-read the certificate and key; on error the old ones stay in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (config, validity) = load(&self.cert, &self.key)?;
        let new = (TlsAcceptor::from(config), validity);
        match self.acceptor.write() {
            Ok(mut a) => *a = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }

    /// Tell the operator about the certificate in force: its expiry as a metric, and a warning
    /// in the log if it expired, is not yet valid or expires within `EXPIRY_WARNING_DAYS`.
    /// Returns the warning. Called at start and after each reload, with the wall clock
    /// (`metrics::wall_clock_ms`): clients judge the dates by theirs.
    pub fn report(&self, metrics: &crate::metrics::Metrics, now_ms: u64) -> Option<String> {
        // Not the previous certificate's date when these could not be read: no date.
        metrics.tls_not_after(self.validity().map(|v| v.not_after));
        let warning = self.warning(now_ms)?;
        tracing::warn!("{warning}");
        Some(warning)
    }

    /// What `report` warns about at `now_ms` (wall clock): dates that could not be read, or
    /// `Validity::warning`. `check-config --secrets` prints it as `serve` logs it.
    pub fn warning(&self, now_ms: u64) -> Option<String> {
        let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        match self.validity() {
            None => Some(format!(
                "TLS certificate {}: its validity dates could not be read, so its expiry is \
                 not reported",
                self.cert.display()
            )),
            Some(validity) => validity.warning(&self.cert, now),
        }
    }

    /// The validity dates of the certificate chain in force (`None` if they could not be read).
    pub fn validity(&self) -> Option<Validity> {
        match self.acceptor.read() {
            Ok(a) => a.1,
            Err(poisoned) => poisoned.into_inner().1,
        }
    }

    fn current(&self) -> TlsAcceptor {
        match self.acceptor.read() {
            Ok(a) => a.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }
}

/// An axum `Listener` yielding TLS streams whose handshake has completed.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Start accepting on `tcp`; the accept loop ends when the listener is dropped.
    pub fn new(tcp: TcpListener, tls: TlsCell, handshakes: Handshakes) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, tls, tx, handshakes));
        Ok(TlsListener { local, ready })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: TlsCell,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    handshakes: Handshakes,
) {
    let permits = Arc::new(Semaphore::new(
        handshakes.at_once.clamp(1, Semaphore::MAX_PERMITS),
    ));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            () = tx.closed() => return,
        };
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = tx.closed() => return,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = tls.current();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = async {
                if is_plain_http(&stream).await {
                    answer_plain_http(stream).await;
                    return Ok(None);
                }
                acceptor.accept(stream).await.map(Some)
            };
            match tokio::time::timeout(handshakes.timeout, handshake).await {
                Ok(Ok(Some(stream))) => {
                    let _ = tx.send((stream, peer)).await;
                }
                Ok(Ok(None)) => {
                    tracing::debug!(%peer, "plain HTTP on the TLS port: answered 400 tls_required")
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Whether the client's first byte starts an HTTP/1 request line (a method is an upper-case
/// token) rather than a TLS record (a ClientHello starts with 0x16). Nothing is consumed.
async fn is_plain_http(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(stream.peek(&mut first).await, Ok(1) if first[0].is_ascii_uppercase())
}

/// Most of a plain-HTTP request head read before it is answered.
const PLAIN_HEAD_MAX: usize = 16 * 1024;

/// Answer a plain-HTTP request on the TLS port with the API's JSON error (400 `tls_required`)
/// instead of a TLS alert the client would misread as a broken HTTP answer, then close. The
/// head is read first (up to `PLAIN_HEAD_MAX`) so that closing with it unread does not reset
/// the connection before the client reads the answer.
async fn answer_plain_http(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    while head.len() < PLAIN_HEAD_MAX && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = serde_json::json!({"error": {
        "code": "tls_required",
        "message": "this port serves HTTPS only ([server] tls_cert and tls_key are set) and the \
                    request came in plain HTTP: send it to https:// on the same port",
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends when we are dropped; never resolve otherwise.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-06-01 00:00:00 UTC.
    const JUNE: i64 = 1_780_272_000;
    const DAY: i64 = 86_400;

    fn valid(from: i64, to: i64) -> Validity {
        Validity {
            not_before: from,
            not_after: to,
        }
    }

    /// An X.509 v1 certificate and its key (`openssl x509 -req -signkey`, no extensions), valid
    /// to 2126.
    const V1_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBIzCBywIUZrAvqOWe4mqZBgwbVGkypjkPrYEwCgYIKoZIzj0EAwIwFDESMBAG
A1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNzA2NTMzOVoYDzIxMjYxMTEzMDY1MzM5
WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AATPNHManDJ5GcT8zR4VWG4P5tA7+5604CkxTlY2x82R7MboawiIcqgVTR5rrWUI
zZ0S8lG3DsgqxqOEFVMSIOBLMAoGCCqGSM49BAMCA0cAMEQCIEKTKqlQEW5K8gzB
N0i77q82p/gWUG+M1qctJx2kpTkoAiBQXDoVzg5CCZ3pDCAAfJEc2Z6eNZvfXvuh
bCjrupjZxA==
-----END CERTIFICATE-----
";
    const V1_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8W4n9R2xI4BiZ1BQ
cV2lA89avhQpCWObwJSw3RzoX3GhRANCAATPNHManDJ5GcT8zR4VWG4P5tA7+560
4CkxTlY2x82R7MboawiIcqgVTR5rrWUIzZ0S8lG3DsgqxqOEFVMSIOBL
-----END PRIVATE KEY-----
";

    /// `load_server_config` on these PEM texts, written to files.
    fn load_pem(cert: &str, key: &str) -> Result<Arc<ServerConfig>, TlsError> {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        load_server_config(&c, &k)
    }

    fn refusal(cert: &str, key: &str) -> String {
        match load_pem(cert, key) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_refused_certificate_says_why_in_words() {
        let e = refusal(V1_CERT, V1_KEY);
        assert!(
            e.contains("do not form a usable server config: the certificate is X.509 version 1"),
            "{e}"
        );
        assert!(!e.contains("OtherError"), "{e}");
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let e = refusal(&a.cert.pem(), &b.key_pair.serialize_pem());
        assert!(
            e.contains("the private key does not belong to the certificate"),
            "{e}"
        );
        // A matching pair loads.
        assert!(load_pem(&a.cert.pem(), &a.key_pair.serialize_pem()).is_ok());
    }

    #[test]
    fn an_expired_certificate_is_named_with_how_long_ago_and_what_to_do() {
        let w = valid(JUNE - 400 * DAY, JUNE - 3 * DAY)
            .warning(Path::new("/etc/tierline/cert.pem"), JUNE)
            .unwrap();
        assert!(
            w.contains("/etc/tierline/cert.pem expired 3 days ago"),
            "{w}"
        );
        assert!(w.contains("2026-05-29 00:00:00 UTC"), "{w}");
        assert!(w.contains("SIGHUP"), "{w}");
    }

    #[test]
    fn a_certificate_not_yet_valid_says_from_when() {
        let w = valid(JUNE + 2 * DAY, JUNE + 90 * DAY)
            .warning(Path::new("c.pem"), JUNE)
            .unwrap();
        assert!(
            w.contains("not valid until 2026-06-03 00:00:00 UTC (in 2 days)"),
            "{w}"
        );
    }

    #[test]
    fn only_the_last_fortnight_before_expiry_is_warned_about() {
        let soon = valid(JUNE - 80 * DAY, JUNE + 13 * DAY).warning(Path::new("c.pem"), JUNE);
        assert!(soon.is_some_and(|w| w.contains("expires in 13 days")));
        let later = valid(JUNE - 80 * DAY, JUNE + 15 * DAY);
        assert_eq!(later.warning(Path::new("c.pem"), JUNE), None);
        // The last valid second is still valid.
        let edge = valid(JUNE - 80 * DAY, JUNE);
        assert!(edge
            .warning(Path::new("c.pem"), JUNE)
            .is_some_and(|w| w.contains("expires in less than 2 hours")));
        let one = valid(JUNE - 80 * DAY, JUNE + DAY + 5);
        assert!(one
            .warning(Path::new("c.pem"), JUNE)
            .is_some_and(|w| w.contains("expires in 1 day (")));
        // Just expired: not "0 days ago".
        let gone = valid(JUNE - 80 * DAY, JUNE - 3 * 3_600 - 1);
        assert!(gone
            .warning(Path::new("c.pem"), JUNE)
            .is_some_and(|w| w.contains("expired 3 hours ago")));
    }

    fn cert_dated(
        from: (i32, u8, u8),
        to: (i32, u8, u8),
        issuer: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
    ) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = match issuer {
            None => {
                params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
                params.self_signed(&key).unwrap()
            }
            Some((ca, ca_key)) => params.signed_by(&key, ca, ca_key).unwrap(),
        };
        (cert, key)
    }

    #[test]
    fn the_dates_are_those_of_the_whole_chain_as_sent() {
        let (ca, ca_key) = cert_dated((2019, 6, 1), (2020, 12, 31), None);
        let (leaf, _) = cert_dated((2020, 1, 2), (2021, 3, 4), Some((&ca, &ca_key)));
        let leaf_alone = Validity::of_chain(&[leaf.der().clone()]).unwrap();
        assert_eq!(leaf_alone.not_before, 1_577_923_200, "2020-01-02");
        assert_eq!(leaf_alone.not_after, 1_614_816_000, "2021-03-04");
        // The intermediate expires first: the chain is refused from then on.
        let chain = Validity::of_chain(&[leaf.der().clone(), ca.der().clone()]).unwrap();
        assert_eq!(chain.not_before, 1_577_923_200, "the leaf's, the later");
        assert_eq!(
            chain.not_after, 1_609_372_800,
            "2020-12-31, the intermediate's"
        );
        let junk = CertificateDer::from(vec![1, 2, 3]);
        assert_eq!(Validity::of_chain(&[leaf.der().clone(), junk]), None);
    }

    #[test]
    fn dates_that_cannot_be_read_clear_the_expiry_instead_of_keeping_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = cert_dated((2020, 1, 2), (2021, 3, 4), None);
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let cell = TlsCell::load(&cert_path, &key_path).unwrap();
        let metrics = crate::metrics::Metrics::unserved(
            &Default::default(),
            &crate::config::RoutingConfig::empty(),
        )
        .unwrap();
        let expiry = |m: &crate::metrics::Metrics| {
            m.render()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("tierline_tls_certificate_not_after_seconds ")
                        .map(str::to_string)
                })
                .unwrap()
        };
        let warning = cell.report(&metrics, JUNE as u64 * 1000).unwrap();
        assert!(warning.contains("expired 1915 days ago"), "{warning}");
        assert_eq!(expiry(&metrics), "1614816000");
        // As if a reload had installed a certificate whose dates this parser cannot read.
        match cell.acceptor.write() {
            Ok(mut a) => a.1 = None,
            Err(_) => unreachable!(),
        }
        let warning = cell.report(&metrics, JUNE as u64 * 1000).unwrap();
        assert!(warning.contains("could not be read"), "{warning}");
        assert_eq!(expiry(&metrics), "NaN");
    }
}
