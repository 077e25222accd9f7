//! The shutdown signal: one trigger, any number of waiters.
//!
//! SIGTERM/SIGINT (or `Daemon::shutdown`) trigger it once; the HTTP server stops accepting,
//! long-polls and SSE streams end, subscribers stop, and in-flight requests get
//! `[server] shutdown_grace_ms` to finish. Triggering twice is harmless.

use tokio::sync::watch;

/// Cloneable shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, _rx) = watch::channel(false);
        Shutdown { tx }
    }

    /// Ask everything to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once `trigger` has been called (at once if it already was).
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_wakes_when_shutdown_is_triggered() {
        let shutdown = Shutdown::new();
        let a = tokio::spawn(shutdown.wait());
        let b = tokio::spawn(shutdown.wait());
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        a.await.unwrap();
        b.await.unwrap();
        // A late waiter returns at once.
        shutdown.wait().await;
        assert!(shutdown.is_triggered());
    }
}
