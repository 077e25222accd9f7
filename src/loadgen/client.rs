//! One keep-alive HTTP/1.1 connection to the server under test.
//!
//! Owns a hyper client connection and nothing else: no retries, no pooling, no timeouts (the
//! caller decides what a slow answer means). One request at a time, as a PBX's webhook sender on
//! one connection would.
//!
//! The connection is driven inside the task that sends on it (`hyper::client::conn::http1` with
//! its connection future polled next to the request), not by a task of its own: that saves two
//! task wake-ups per request, which is most of what a generator on a shared 2-core machine
//! spends besides the kernel's socket work.

use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP handshake with {addr} failed: {source}")]
    Handshake {
        addr: SocketAddr,
        source: hyper::Error,
    },
    #[error("`{0}` is not a valid Host header")]
    Host(String),
    #[error("`{0}` is not a valid request path")]
    Path(String),
    #[error("the connection failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the server closed the connection")]
    Closed,
}

type Driver = Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// An open connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// The connection future: reads and writes the socket whenever it is polled.
    driver: Driver,
    /// False once the driver has finished (the peer closed or the connection failed).
    open: bool,
    host: HeaderValue,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("open", &self.open)
            .finish()
    }
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Connection {
    /// Connect to `addr`, sending `host` as the `Host` header. TCP_NODELAY is set so small
    /// requests are not held back by Nagle's algorithm.
    pub async fn open(addr: SocketAddr, host: &str) -> Result<Connection, ClientError> {
        let host = HeaderValue::from_str(host).map_err(|_| ClientError::Host(host.to_string()))?;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream
            .set_nodelay(true)
            .map_err(|source| ClientError::Connect { addr, source })?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        Ok(Connection {
            sender,
            driver: Box::pin(driver),
            open: true,
            host,
        })
    }

    /// `POST path` with a JSON body; the status and the whole answer body.
    pub async fn post_json(
        &mut self,
        path: &'static str,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        self.send(Method::POST, Uri::from_static(path), body).await
    }

    /// `GET path`; the status and the whole answer body.
    pub async fn get(&mut self, path: &str) -> Result<(u16, Bytes), ClientError> {
        let uri: Uri = path
            .parse()
            .map_err(|_| ClientError::Path(path.to_string()))?;
        self.send(Method::GET, uri, Bytes::new()).await
    }

    async fn send(
        &mut self,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        if !self.open {
            return Err(ClientError::Closed);
        }
        let has_body = !body.is_empty();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        if has_body {
            headers.insert(CONTENT_TYPE, JSON);
        }
        let Connection {
            sender,
            driver,
            open,
            ..
        } = self;
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, bytes))
        };
        tokio::select! {
            answer = exchange => Ok(answer?),
            ended = driver.as_mut() => {
                *open = false;
                ended?;
                Err(ClientError::Closed)
            }
        }
    }
}
