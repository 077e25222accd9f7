//! The config file watch: a change to the file reloads it, debounced.
//!
//! `notify` (inotify on Linux) watches the file's directory, because editors and config
//! management replace files by rename. Events for other files are ignored, unless the path is
//! a symlink: then its target's directory is watched too and any event in either counts. A burst of events
//! (write + rename + chmod) becomes one reload once the file has been quiet for `DEBOUNCE`; the
//! reload itself is skipped when the text did not change. Nothing polls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::reload::Reloader;
use super::shutdown::Shutdown;

/// Quiet time after the last file event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Watch `path` and reload through `reloader` until shutdown.
pub fn spawn(
    path: &Path,
    reloader: Arc<Reloader>,
    shutdown: Shutdown,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    // A symlinked config (a Kubernetes ConfigMap mount: `tierline.toml -> ..data/tierline.toml`,
    // updated by swapping the `..data` link; or a link to a file kept elsewhere) changes without
    // an event on its own name: then every event in its directory and in its target's directory
    // counts (the reload skips a text that did not change).
    let linked = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let file_name = (!linked)
        .then(|| path.file_name().map(|n| n.to_os_string()))
        .flatten();
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let target_dir = linked
        .then(|| std::fs::canonicalize(path).ok())
        .flatten()
        .and_then(|t| t.parent().map(Path::to_path_buf))
        .filter(|t| std::fs::canonicalize(&dir).map_or(true, |d| &d != t));
    // One pending signal is enough: the reload reads the file's latest text.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let ours = file_name.is_none()
            || event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
        if ours {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    if let Some(target_dir) = &target_dir {
        // Without it the link's own directory is still watched (a ConfigMap swap lands there);
        // edits of the target elsewhere then need SIGHUP. Not a reason to refuse to start.
        if let Err(e) = watcher.watch(target_dir, RecursiveMode::NonRecursive) {
            tracing::warn!(
                dir = %target_dir.display(),
                error = %e,
                "cannot watch the config symlink's target directory: edits there need SIGHUP"
            );
        }
    }
    Ok(tokio::spawn(async move {
        let _watcher = watcher; // dropped (unwatched) when the task ends
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                got = rx.recv() => if got.is_none() { return },
                () = &mut stop => return,
            }
            // Debounce: wait until no event for DEBOUNCE.
            loop {
                tokio::select! {
                    got = rx.recv() => if got.is_none() { return },
                    () = tokio::time::sleep(DEBOUNCE) => break,
                    () = &mut stop => return,
                }
            }
            // A shutdown does not wait for the reload: one stuck reading the file (a FIFO, a
            // hung network mount) would hold the exit for as long (the read itself is left to
            // the runtime's bounded shutdown, as SIGHUP's is). A change already handed to the
            // engine runs to its end on a task of its own (`Reloader::apply_source`).
            let reloaded = tokio::select! {
                r = reloader.reload_file() => r,
                () = &mut stop => return,
            };
            match reloaded {
                Ok(report) if report.applied => {
                    tracing::info!("config file changed: reloaded");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "config file changed but was not applied"),
            }
        }
    }))
}
