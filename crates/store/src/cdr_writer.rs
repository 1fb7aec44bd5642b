//! The CDR writer: call tasks hand over their CDR and move on; one task
//! writes them in batches, and spools them to a local file while the store
//! refuses them, so neither a slow disk nor a store outage holds up a call
//! or loses a CDR.
//!
//! - **Batches.** Everything that queued up while the previous batch was
//!   being committed goes into the next transaction (at most
//!   [`MAX_BATCH`] rows). On SQLite with `synchronous = FULL` a commit is an
//!   fsync, so one row per transaction caps a disk at a few hundred calls a
//!   second; batching makes it one fsync per batch.
//! - **Spool.** When a batch fails (store down, disk full, lock timeout) it
//!   is appended to the spool file, one JSON object per line, and fsynced.
//!   From then on new CDRs go to the spool as well, so they keep their order,
//!   and the spool is replayed into the store with a growing back-off until
//!   it succeeds; a spool left by an earlier run is replayed at start.
//!   Replay commits in batches and rewrites what is left, so a failure part
//!   way through never writes a row twice. (A crash between a commit and the
//!   spool rewrite can: those rows are logged as "replayed" first.)
//! - **Bad rows** (which the schema would refuse whatever we do) are logged
//!   in full at error level and counted; they never block the rows behind.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Store;
use crate::cdrs::validate_cdr;
use crate::types::NewCdr;

/// Rows per transaction, at most.
pub const MAX_BATCH: usize = 500;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

enum Cmd {
    Cdr(Box<NewCdr>),
    Flush(oneshot::Sender<()>),
}

/// Counters an operator watches: a growing `queued` or `spooled` means the
/// store is not keeping up or not there.
#[derive(Debug, Default)]
pub struct CdrWriterStats {
    /// Handed over, not yet committed or spooled.
    pub queued: AtomicU64,
    /// Committed to the store (directly or from the spool).
    pub written: AtomicU64,
    /// Rows in the spool file now.
    pub spooled: AtomicU64,
    /// Refused as invalid; logged, never stored.
    pub rejected: AtomicU64,
    /// Batches the store refused (each went to the spool).
    pub store_failures: AtomicU64,
}

/// A handle to the writer task. Cheap to clone; the task ends, after
/// writing everything handed to it, when the last handle is dropped.
#[derive(Clone)]
pub struct CdrWriter {
    tx: mpsc::UnboundedSender<Cmd>,
    stats: Arc<CdrWriterStats>,
}

impl CdrWriter {
    /// Starts the writer on the current tokio runtime. `spool` is the file
    /// used while the store refuses writes (e.g. `<data dir>/cdr-spool.jsonl`);
    /// without one, a refused batch is logged in full and counted as lost.
    pub fn start(store: Store, spool: Option<PathBuf>) -> (CdrWriter, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(CdrWriterStats::default());
        let task = Task {
            store,
            spool: spool.map(Spool::new),
            stats: stats.clone(),
            retry_at: None,
            backoff: FIRST_RETRY,
        };
        let handle = tokio::spawn(task.run(rx));
        (CdrWriter { tx, stats }, handle)
    }

    /// Queues a CDR. Never waits; the row is committed (or spooled) within
    /// one batch's time.
    pub fn submit(&self, cdr: NewCdr) {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(Cmd::Cdr(cdr))) = self.tx.send(Cmd::Cdr(Box::new(cdr))) {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(cdr = ?cdr, "CDR writer stopped: CDR not written");
        }
    }

    /// Waits until every CDR submitted before this call is committed or
    /// spooled.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Cmd::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    pub fn stats(&self) -> &CdrWriterStats {
        &self.stats
    }
}

struct Task {
    store: Store,
    spool: Option<Spool>,
    stats: Arc<CdrWriterStats>,
    /// Set while the spool holds rows: when to try replaying it next.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        if let Some(spool) = &self.spool {
            let rows = spool.count();
            if rows > 0 {
                tracing::warn!(rows, path = %spool.path.display(), "CDR spool from an earlier run: replaying");
                self.stats.spooled.store(rows, Ordering::Relaxed);
                self.retry_at = Some(Instant::now());
            }
        }
        let mut batch: Vec<NewCdr> = Vec::with_capacity(MAX_BATCH);
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            if let Some(at) = self.retry_at {
                if Instant::now() >= at {
                    self.replay().await;
                    continue;
                }
            }
            let cmd = match self.retry_at {
                Some(at) => tokio::select! {
                    cmd = rx.recv() => cmd,
                    () = tokio::time::sleep_until(at) => continue,
                },
                None => rx.recv().await,
            };
            let Some(cmd) = cmd else { break };
            self.take(cmd, &mut batch, &mut waiters);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => self.take(cmd, &mut batch, &mut waiters),
                    Err(_) => break,
                }
            }
            self.write(&mut batch).await;
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
        }
        // Every handle is gone: what was queued is written; try the spool
        // once more so a clean shutdown leaves none when the store is up.
        if self.retry_at.is_some() {
            self.replay().await;
        }
    }

    fn take(&self, cmd: Cmd, batch: &mut Vec<NewCdr>, waiters: &mut Vec<oneshot::Sender<()>>) {
        match cmd {
            Cmd::Cdr(cdr) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                match validate_cdr(&cdr) {
                    Ok(()) => batch.push(*cdr),
                    Err(e) => {
                        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, cdr = ?cdr, "CDR refused as invalid");
                    }
                }
            }
            Cmd::Flush(done) => waiters.push(done),
        }
    }

    /// Commits `batch`, or spools it: straight to the spool while older rows
    /// wait there, so rows reach the store in the order calls ended.
    async fn write(&mut self, batch: &mut Vec<NewCdr>) {
        if batch.is_empty() {
            return;
        }
        if self.retry_at.is_none() {
            match self.store.insert_cdrs(batch).await {
                Ok(_) => {
                    self.stats
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear();
                    return;
                }
                Err(e) => {
                    self.stats.store_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, rows = batch.len(), "store refused CDRs: spooling");
                    self.backoff = FIRST_RETRY;
                    self.retry_at = Some(Instant::now() + self.backoff);
                }
            }
        }
        self.spool_batch(batch);
    }

    fn spool_batch(&mut self, batch: &mut Vec<NewCdr>) {
        let Some(spool) = &self.spool else {
            for cdr in batch.drain(..) {
                tracing::error!(cdr = ?cdr, "CDR not written (no spool configured)");
            }
            self.retry_at = None;
            return;
        };
        match spool.append(batch) {
            Ok(()) => {
                self.stats
                    .spooled
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                // Nowhere left to put them: the log is the last record.
                tracing::error!(error = %e, path = %spool.path.display(), "CDR spool write failed");
                for cdr in batch.iter() {
                    tracing::error!(cdr = ?cdr, "CDR not written");
                }
            }
        }
        batch.clear();
    }

    /// Moves the spool into the store, a batch per transaction.
    async fn replay(&mut self) {
        let Some(spool) = &self.spool else {
            self.retry_at = None;
            return;
        };
        let rows = match spool.read() {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, path = %spool.path.display(), "CDR spool unreadable");
                self.retry_later();
                return;
            }
        };
        let mut done = 0;
        for chunk in rows.chunks(MAX_BATCH) {
            if let Err(e) = self.store.insert_cdrs(chunk).await {
                tracing::warn!(error = %e, left = rows.len() - done, "CDR spool replay failed; will retry");
                break;
            }
            done += chunk.len();
            tracing::info!(rows = chunk.len(), "CDRs replayed from the spool");
        }
        self.stats.written.fetch_add(done as u64, Ordering::Relaxed);
        let left = &rows[done..];
        if let Err(e) = spool.rewrite(left) {
            // The committed rows are still in the file; stop replaying it
            // rather than writing them twice, and say so loudly.
            tracing::error!(error = %e, path = %spool.path.display(), committed = done,
                "CDR spool could not be rewritten after replay; the first rows of it are already stored");
            self.retry_at = None;
            return;
        }
        self.stats
            .spooled
            .store(left.len() as u64, Ordering::Relaxed);
        if left.is_empty() {
            self.retry_at = None;
            self.backoff = FIRST_RETRY;
        } else {
            self.retry_later();
        }
    }

    fn retry_later(&mut self) {
        self.backoff = (self.backoff * 2).min(MAX_RETRY);
        self.retry_at = Some(Instant::now() + self.backoff);
    }
}

/// The spool file: JSON lines, appended and fsynced per batch.
struct Spool {
    path: PathBuf,
}

impl Spool {
    fn new(path: PathBuf) -> Spool {
        Spool { path }
    }

    fn count(&self) -> u64 {
        self.read().map_or(0, |rows| rows.len() as u64)
    }

    fn append(&self, rows: &[NewCdr]) -> std::io::Result<()> {
        let mut text = Vec::with_capacity(rows.len() * 400);
        for row in rows {
            serde_json::to_writer(&mut text, row)?;
            text.push(b'\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&text)?;
        file.sync_data()
    }

    /// Every complete row. A torn last line (a crash mid-append) is logged
    /// and skipped: its batch was never acknowledged as spooled.
    fn read(&self) -> std::io::Result<Vec<NewCdr>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut rows = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<NewCdr>(&line) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    tracing::error!(error = %e, line = n + 1, text = %line, "unreadable CDR spool line skipped")
                }
            }
        }
        Ok(rows)
    }

    /// Replaces the spool with `rows` (none: removes it), atomically.
    fn rewrite(&self, rows: &[NewCdr]) -> std::io::Result<()> {
        if rows.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let tmp = tmp_path(&self.path);
        let _ = std::fs::remove_file(&tmp);
        Spool::new(tmp.clone()).append(rows)?;
        std::fs::rename(&tmp, &self.path)
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
