//! The sync thread (`tierline-sync`): makes written journal batches durable off the engine task.
//!
//! The engine task writes each batch to the newest segment with write(2) only, applies it at
//! once, and hands this thread a job naming the batch's last journal index and the segment file.
//! The thread takes every job queued so far, fdatasyncs the file once for all of them (one sync
//! covers every byte written before it: group commit without delaying anything), and reports
//! the highest index now durable back to the engine task on a tokio channel the task `select!`s
//! on. The engine task holds each batch's replies, decision-seq publication and reads until the
//! report covers it (see `task`).
//!
//! With `max_batch_delay_ms` (the group-commit window) the thread also waits, after a sync, until
//! that long after it before the next one, gathering jobs meanwhile: fewer fsyncs under load
//! (less CPU), at the price of up to one window on the replies. When it did wait, it then asks
//! the engine task to *gather* (`SyncReport::Gather`): take every command queued since its last
//! batch, write them, and answer `SyncThread::gathered`; the sync that follows covers them too.
//! The engine task takes no commands while a written batch awaits its sync (see `task`), so
//! under load it wakes about twice per window (the gather and the report) instead of once per
//! request: the HTTP workers' sends find no waiting receiver and wake nobody. A request waits
//! for the same sync either way; timers still fire at their deadlines.
//!
//! Segment rolls sync the old segment on the engine task before the new one is written (rare:
//! once per `segment_bytes`), so syncing the newest file named in the queue covers everything.
//!
//! An fsync failure is fatal: after a failed fsync the kernel may have dropped the dirty pages it
//! could not write, and a retried fsync can report success without them (PostgreSQL's
//! "fsyncgate", 2018). The thread reports `SyncReport::Failed` and stops; the engine task fails
//! every held reply with 503 and stops, and the daemon exits with code 1
//! (`DaemonError::JournalSync`). Restarting replays the journal from what really is on disk.
//!
//! How the file is synced is a trait object (`FileSync`) so a test can inject a failure through
//! the library API (`DaemonOptions::journal_sync`); the daemon uses `Fdatasync`.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as tokio_mpsc;

/// How a segment file is made durable.
pub trait FileSync: Send + 'static {
    fn sync(&mut self, file: &File) -> std::io::Result<()>;
}

/// fdatasync(2): the data and the metadata needed to read it back (the file size); then a check
/// that the file still has a directory entry (`journal::sync_journal_file`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fdatasync;

impl FileSync for Fdatasync {
    fn sync(&mut self, file: &File) -> std::io::Result<()> {
        crate::journal::sync_journal_file(file)
    }
}

/// A `FileSync` that reports how long each sync took (the daemon records it as
/// `tierline_journal_sync_seconds`), failed ones included.
pub struct Timed<F> {
    inner: Box<dyn FileSync>,
    record: F,
}

impl<F: FnMut(Duration) + Send + 'static> Timed<F> {
    pub fn new(inner: Box<dyn FileSync>, record: F) -> Timed<F> {
        Timed { inner, record }
    }
}

impl<F: FnMut(Duration) + Send + 'static> FileSync for Timed<F> {
    fn sync(&mut self, file: &File) -> std::io::Result<()> {
        let started = Instant::now();
        let outcome = self.inner.sync(file);
        (self.record)(started.elapsed());
        outcome
    }
}

/// What the sync thread tells the engine task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncReport {
    /// Every journal record up to and including this index is durable.
    Synced(u64),
    /// A sync failed (the message names the file). Nothing after the last `Synced` is known to be
    /// durable, and nothing ever will be: the daemon must stop.
    Failed(String),
    /// The window is over and a sync is next: take the commands queued so far, write them, then
    /// call `SyncThread::gathered`. The thread waits for that (at most `GATHER_WAIT`).
    Gather,
}

/// How long the sync thread waits for `gathered` after a `Gather` before it syncs what it has.
/// Only a busy engine task (a snapshot capture, a long batch) answers late; what it writes after
/// the wait is covered by the next sync.
pub const GATHER_WAIT: Duration = Duration::from_millis(100);

/// Where the engine task receives `SyncReport`s.
pub type SyncReports = tokio_mpsc::UnboundedReceiver<SyncReport>;

/// One written batch to make durable.
struct Job {
    /// Last journal index of the batch.
    index: u64,
    file: Arc<File>,
    path: PathBuf,
}

/// What the engine task sends the sync thread, in the order it wrote.
enum Msg {
    Job(Job),
    /// Answer to `SyncReport::Gather`: every job of the gather is queued before this.
    Gathered,
}

/// The running sync thread. Dropping the last job sender (`stop`) lets it finish the queued jobs
/// and exit.
pub struct SyncThread {
    jobs: Option<mpsc::Sender<Msg>>,
    reports: tokio_mpsc::UnboundedSender<SyncReport>,
    thread: Option<JoinHandle<()>>,
    /// It has a window, and so sends `SyncReport::Gather`.
    gathers: bool,
}

impl SyncThread {
    /// Start the thread; the receiver is the engine task's end. `window` (`max_batch_delay_ms`):
    /// when the previous sync was less than this long ago, the thread gathers jobs until this
    /// long after it, so there is at most one sync per window under load while a batch after a
    /// quiet spell is synced at once. Only replies wait for it; the engine task never does.
    pub fn start(
        mut syncer: Box<dyn FileSync>,
        window: Option<Duration>,
    ) -> std::io::Result<(SyncThread, SyncReports)> {
        let (jobs, inbox) = mpsc::channel::<Msg>();
        let (reports, receiver) = tokio_mpsc::unbounded_channel();
        let report = reports.clone();
        let thread = std::thread::Builder::new()
            .name("tierline-sync".into())
            .spawn(move || {
                let mut last_sync: Option<Instant> = None;
                // How long the last gather took the engine task (ask that much before the
                // window ends, so the sync itself still starts on time).
                let mut lead = Duration::ZERO;
                while let Ok(msg) = inbox.recv() {
                    // A `Gathered` that came after its wait timed out: nothing to do.
                    let Msg::Job(mut job) = msg else { continue };
                    if let (Some(window), Some(last)) = (window, last_sync) {
                        // Sleep out the window rather than wait on the channel: jobs queue
                        // without waking this thread (a wake per batch cost more CPU than the
                        // fsyncs the window saves), and the drain below takes them all.
                        let gather_at = last + window - lead.min(window / 2);
                        if let Some(left) = gather_at.checked_duration_since(Instant::now()) {
                            std::thread::sleep(left);
                            let asked = Instant::now();
                            if report.send(SyncReport::Gather).is_err() {
                                return;
                            }
                            let until = asked + GATHER_WAIT;
                            while let Some(left) = until.checked_duration_since(Instant::now()) {
                                match inbox.recv_timeout(left) {
                                    Ok(Msg::Job(next)) => job = next,
                                    // Answered; or no answer in time, or stopping: sync what
                                    // was written.
                                    Ok(Msg::Gathered) | Err(_) => break,
                                }
                            }
                            lead = asked.elapsed();
                        }
                    }
                    // Coalesce: one sync of the newest file covers every job queued before it.
                    while let Ok(next) = inbox.try_recv() {
                        if let Msg::Job(next) = next {
                            job = next;
                        }
                    }
                    let outcome = match syncer.sync(&job.file) {
                        Ok(()) => SyncReport::Synced(job.index),
                        Err(e) => {
                            SyncReport::Failed(format!("cannot sync {}: {e}", job.path.display()))
                        }
                    };
                    last_sync = Some(Instant::now());
                    let failed = matches!(outcome, SyncReport::Failed(_));
                    if report.send(outcome).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok((
            SyncThread {
                jobs: Some(jobs),
                reports,
                thread: Some(thread),
                gathers: window.is_some(),
            },
            receiver,
        ))
    }

    /// Queue the batch ending at journal `index`, written to `file`, for a sync.
    pub fn submit(&self, index: u64, file: Arc<File>, path: PathBuf) {
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Msg::Job(Job { index, file, path })).is_ok());
        if !sent {
            // The thread is gone (it reported a failure, or panicked): nothing more is durable.
            self.fail(format!(
                "the sync thread is not running; journal record {index} cannot be made durable"
            ));
        }
    }

    /// Whether this thread asks the engine task to gather before its syncs (it has a window).
    pub fn gathers(&self) -> bool {
        self.gathers
    }

    /// The engine task has written what it gathered after a `SyncReport::Gather`.
    pub fn gathered(&self) {
        if let Some(jobs) = &self.jobs {
            // A thread that is gone has reported why (or will be noticed at the next submit).
            let _ = jobs.send(Msg::Gathered);
        }
    }

    /// Report a sync failure seen outside the thread (a sync on the engine task during a segment
    /// roll or a rollback): it is as fatal as one on the thread.
    pub fn fail(&self, message: String) {
        let _ = self.reports.send(SyncReport::Failed(message));
    }

    /// Let the thread finish the queued jobs and wait for it.
    pub fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            if super::durable::blocking(|| thread.join()).is_err() {
                tracing::error!("the sync thread panicked");
            }
        }
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        // Do not join here: a dropped daemon (as in a crash test) must not wait on the disk.
        self.jobs = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Gate(mpsc::Receiver<std::io::Result<()>>);

    impl FileSync for Gate {
        fn sync(&mut self, _file: &File) -> std::io::Result<()> {
            self.0.recv().unwrap_or(Ok(()))
        }
    }

    #[tokio::test]
    async fn reports_rise_to_the_last_job_and_a_failure_is_reported_once() {
        let (open, gate) = mpsc::channel();
        let (mut thread, mut reports) = SyncThread::start(Box::new(Gate(gate)), None).unwrap();
        let file = Arc::new(tempfile::tempfile().unwrap());
        open.send(Ok(())).unwrap();
        thread.submit(1, Arc::clone(&file), "seg".into());
        assert_eq!(reports.recv().await, Some(SyncReport::Synced(1)));
        // Jobs queued while the thread waits are coalesced: reports only rise, ending at 4.
        for index in 2..=4 {
            thread.submit(index, Arc::clone(&file), "seg".into());
        }
        for _ in 0..3 {
            open.send(Ok(())).unwrap();
        }
        let mut seen = Vec::new();
        while seen.last() != Some(&SyncReport::Synced(4)) {
            seen.push(reports.recv().await.unwrap());
        }
        assert!(
            seen.len() <= 3
                && seen.windows(2).all(|w| match (&w[0], &w[1]) {
                    (SyncReport::Synced(a), SyncReport::Synced(b)) => a < b,
                    _ => false,
                }),
            "{seen:?}"
        );
        // The gate may still hold spare permits from the coalesced syncs: submit until the
        // failure queued after them is reached.
        open.send(Err(std::io::Error::other("EIO"))).unwrap();
        let path = PathBuf::from("00000000000000000001.seg");
        thread.submit(5, Arc::clone(&file), path.clone());
        let failed = loop {
            match reports.recv().await.unwrap() {
                SyncReport::Synced(i) => thread.submit(i + 1, Arc::clone(&file), path.clone()),
                SyncReport::Failed(m) => break m,
                SyncReport::Gather => unreachable!("no window, no gather"),
            }
        };
        assert!(
            failed.contains("EIO") && failed.contains(".seg"),
            "{failed}"
        );
        thread.stop();
    }

    #[derive(Clone, Default)]
    struct Count(Arc<std::sync::atomic::AtomicUsize>);

    impl FileSync for Count {
        fn sync(&mut self, _file: &File) -> std::io::Result<()> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn after_a_window_the_thread_asks_for_a_gather_and_its_sync_covers_the_gathered_batch() {
        let syncs = Count::default();
        let (mut thread, mut reports) =
            SyncThread::start(Box::new(syncs.clone()), Some(Duration::from_millis(30))).unwrap();
        assert!(thread.gathers());
        let file = Arc::new(tempfile::tempfile().unwrap());
        // After a quiet spell the first batch is synced at once, with no gather.
        thread.submit(1, Arc::clone(&file), "seg".into());
        assert_eq!(reports.recv().await, Some(SyncReport::Synced(1)));
        // The next one falls inside the window: the thread sleeps it out, then asks.
        thread.submit(2, Arc::clone(&file), "seg".into());
        assert_eq!(reports.recv().await, Some(SyncReport::Gather));
        // What the engine task writes for the gather is covered by the same sync.
        thread.submit(3, Arc::clone(&file), "seg".into());
        thread.gathered();
        assert_eq!(reports.recv().await, Some(SyncReport::Synced(3)));
        assert_eq!(syncs.0.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A gather nobody answers does not hold the sync back for longer than `GATHER_WAIT`.
        thread.submit(4, Arc::clone(&file), "seg".into());
        assert_eq!(reports.recv().await, Some(SyncReport::Gather));
        assert_eq!(reports.recv().await, Some(SyncReport::Synced(4)));
        thread.stop();
    }

    #[tokio::test]
    async fn without_a_window_the_thread_never_asks_for_a_gather() {
        let (mut thread, mut reports) =
            SyncThread::start(Box::new(Count::default()), None).unwrap();
        assert!(!thread.gathers());
        let file = Arc::new(tempfile::tempfile().unwrap());
        for index in 1..=3 {
            thread.submit(index, Arc::clone(&file), "seg".into());
            assert_eq!(reports.recv().await, Some(SyncReport::Synced(index)));
        }
        thread.stop();
    }

    #[test]
    fn a_timed_sync_reports_each_sync_and_passes_failures_through() {
        let took = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&took);
        let (open, gate) = mpsc::channel();
        let mut timed = Timed::new(Box::new(Gate(gate)), move |d| seen.lock().unwrap().push(d));
        let file = tempfile::tempfile().unwrap();
        open.send(Ok(())).unwrap();
        assert!(timed.sync(&file).is_ok());
        open.send(Err(std::io::Error::other("EIO"))).unwrap();
        let failed = timed.sync(&file).unwrap_err();
        assert_eq!(failed.to_string(), "EIO");
        assert_eq!(
            took.lock().unwrap().len(),
            2,
            "the failed sync is timed too"
        );
    }
}
