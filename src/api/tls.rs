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

/// Build a rustls server config (ring provider, TLS 1.2+1.3, ALPN h2 + http/1.1) from PEM files.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
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
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private_key))
        .map_err(|e| TlsError::Config {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            message: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The acceptor in force, swapped on reload. New connections use the new certificate; open
/// connections keep theirs.
#[derive(Clone)]
pub struct TlsCell {
    cert: PathBuf,
    key: PathBuf,
    acceptor: Arc<RwLock<TlsAcceptor>>,
}

impl TlsCell {
    pub fn load(cert: &Path, key: &Path) -> Result<TlsCell, TlsError> {
        let config = load_server_config(cert, key)?;
        Ok(TlsCell {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            acceptor: Arc::new(RwLock::new(TlsAcceptor::from(config))),
        })
    }

    /// Re-read the certificate and key; on error the old ones stay in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = load_server_config(&self.cert, &self.key)?;
        match self.acceptor.write() {
            Ok(mut a) => *a = TlsAcceptor::from(config),
            Err(poisoned) => *poisoned.into_inner() = TlsAcceptor::from(config),
        }
        Ok(())
    }

    fn current(&self) -> TlsAcceptor {
        match self.acceptor.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
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
