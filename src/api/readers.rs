//! The bound on decision feed readers (`[server] max_feed_readers`).
//!
//! A waiting long-poll and an open SSE stream each hold their connection for as long as they
//! read, and neither is ever cut. Unbounded, readers alone could hold every one of
//! `max_connections`, and events, reads and the health probes would wait for a connection as
//! long as the readers stay. So readers take a place here first; past the limit one is refused
//! `too_many_readers` at once (a long-poll 503 with `Retry-After`, an SSE connect one error
//! event with `retry:`), and the rest of the connections stay for everything else. `tierline_feed_readers` shows how many places are taken.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::metrics::Metrics;

/// The places readers take.
pub struct FeedReaders {
    permits: Arc<Semaphore>,
    max: usize,
    /// `tierline_feed_readers`, registered once (a place is taken and given back per reader).
    taken: metrics::Gauge,
}

impl FeedReaders {
    pub fn new(max: usize, metrics: Metrics) -> Arc<FeedReaders> {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        metrics.feed_readers_max(max);
        let taken = metrics.feed_readers();
        taken.set(0.0);
        Arc::new(FeedReaders {
            permits: Arc::new(Semaphore::new(max)),
            max,
            taken,
        })
    }

    /// A place for one reader, held until the returned value is dropped; 503
    /// `too_many_readers` when all are taken (an SSE connect turns it into an error event).
    pub fn take(self: &Arc<Self>) -> Result<ReaderPlace, ApiError> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.publish();
                Ok(ReaderPlace {
                    permit: Some(permit),
                    readers: self.clone(),
                })
            }
            Err(_) => Err(ApiError::unavailable(
                "too_many_readers",
                format!(
                    "{} decision feed readers (waiting long-polls and SSE streams) are open, the \
                     limit ([server] max_feed_readers): retry later, read without waiting \
                     (wait_ms=0), or use a webhook subscriber",
                    self.max
                ),
            )),
        }
    }

    fn publish(&self) {
        let taken = self.max.saturating_sub(self.permits.available_permits());
        self.taken.set(taken as f64);
    }
}

/// One reader's place; given back when dropped.
pub struct ReaderPlace {
    permit: Option<OwnedSemaphorePermit>,
    readers: Arc<FeedReaders>,
}

impl Drop for ReaderPlace {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.readers.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let metrics = Metrics::unserved(
            &crate::config::daemon::MetricsConfig::default(),
            &crate::config::RoutingConfig::empty(),
        )
        .expect("metrics");
        let readers = FeedReaders::new(2, metrics.clone());
        let a = readers.take().expect("a first place");
        let _b = readers.take().expect("a second place");
        let refused = match readers.take() {
            Err(e) => e,
            Ok(_) => panic!("a third place beyond the limit of 2"),
        };
        assert_eq!(refused.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.body.code, "too_many_readers");
        assert!(refused.body.message.contains("max_feed_readers"));
        assert_eq!(refused.retry_after_s, Some(1));
        assert!(metrics.render().contains("tierline_feed_readers 2\n"));
        drop(a);
        assert!(metrics.render().contains("tierline_feed_readers 1\n"));
        assert!(readers.take().is_ok(), "a place given back is taken again");
    }
}
