//! One keep-alive HTTP/1.1 connection to the server under test.
//!
//! Owns a hyper client connection and nothing else: no retries, no pooling, no timeouts (the
//! caller decides what a slow answer means). One request at a time, as a PBX's webhook sender on
//! one connection would.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
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
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("the connection failed: {0}")]
    Http(#[from] hyper::Error),
}

/// An open connection.
#[derive(Debug)]
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    /// Connect to `addr`, sending `host` as the `Host` header. TCP_NODELAY is set so small
    /// requests are not held back by Nagle's algorithm.
    pub async fn open(addr: SocketAddr, host: &str) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream
            .set_nodelay(true)
            .map_err(|source| ClientError::Connect { addr, source })?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        // The connection future drives the socket; it ends when `sender` is dropped or the peer
        // closes, and its error (if any) surfaces through `send_request`.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            host: host.to_string(),
        })
    }

    /// `POST path` with a JSON body; the status and the whole answer body.
    pub async fn post_json(
        &mut self,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        self.send(Method::POST, path, body).await
    }

    /// `GET path`; the status and the whole answer body.
    pub async fn get(&mut self, path: &str) -> Result<(u16, Bytes), ClientError> {
        self.send(Method::GET, path, Bytes::new()).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host);
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}
