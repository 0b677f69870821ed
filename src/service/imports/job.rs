//! A running import: a blocking thread reads the file into batches (rows, and log lines for the rows it skips);
//! this task writes each batch in one write transaction whose last statement adds its counts to the job's row, so
//! the counts and the data move together and a stop or a takeover leaves no batch half-written. A heartbeat
//! task renews the job's lease and notices a stop asked through any instance.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{Notify, mpsc};

use super::source::{Record, Records, Source, count_lines};
use super::store::{self, Progress};
use super::{HEARTBEAT, ImportState};
use crate::domain::{
    IMPORT_COLUMNS_MAX, IMPORT_LOG_LINES_MAX, IMPORT_ROW_MAX_BYTES, ImportColumns, ImportOptions,
    ImportRow,
};
use crate::service::ServiceError;
use crate::service::locks::begin_write;
use crate::service::sql::now;
use crate::service::subscribers::import_batch;

/// Rows in one batch (one transaction).
const BATCH_ROWS: usize = 5000;
/// Bytes of CSV in one batch, at most: rows with large attributes make smaller batches, so memory stays bounded
/// whatever the rows hold.
const BATCH_BYTES: usize = 1024 * 1024;
/// Batches read ahead of the writer.
const READ_AHEAD: usize = 2;
/// Attempts at a batch the database refused for a transient reason (a deadlock, a restart).
const ATTEMPTS: u32 = 5;
/// Most log lines written when the job starts (the file, ignored columns and ZIP entries).
pub const OPENING_LINES_MAX: usize = 50;
/// Lines kept for the job's last words (the summary) beyond the skipped rows.
const CLOSING_LINES: i32 = 2;

/// Longest log message, in characters: longer ones (a file or column name) are cut, so the log has a bound.
const MESSAGE_MAX_CHARS: usize = 400;

/// How the log writes times (UTC, to the second).
pub const LOG_TIME: &str = "%Y-%m-%dT%H:%M:%SZ";

/// A log line with its time, as listmonk's log has.
pub fn stamped(message: &str) -> String {
    let mut line = format!("{} ", now().format(LOG_TIME));
    let mut chars = message.chars();
    line.extend(chars.by_ref().take(MESSAGE_MAX_CHARS));
    if chars.next().is_some() {
        line.push('…');
    }
    line
}

/// What the reader sends the writer.
enum Read {
    /// Lines in the file, less the header.
    Total(u64),
    Batch(Batch),
    /// The file cannot be read further.
    Failed(String),
}

#[derive(Default)]
struct Batch {
    rows: Vec<ImportRow>,
    /// Rows skipped, with why.
    skipped: Vec<(u64, String)>,
    bytes: usize,
}

/// The job, as its instance runs it.
pub struct Job {
    db: DatabaseConnection,
    token: String,
    options: ImportOptions,
    /// Handed to the reader when the job starts.
    source: Option<Source>,
    columns: ImportColumns,
    logged: i32,
    /// Skipped rows past the log's bound.
    unlogged: u64,
    totals: Progress,
}

/// How a job ended.
enum End {
    Finished,
    Stopped,
    Failed(String),
    /// Another attempt holds the job now: nothing more to write.
    Replaced,
}

impl Job {
    pub fn new(
        db: DatabaseConnection,
        token: String,
        options: ImportOptions,
        source: Source,
        columns: ImportColumns,
        logged: i32,
    ) -> Self {
        Self {
            db,
            token,
            options,
            source: Some(source),
            columns,
            logged,
            unlogged: 0,
            totals: Progress::default(),
        }
    }

    pub async fn run(self) {
        let db = self.db.clone();
        let token = self.token.clone();
        let halted = Arc::new(Notify::new());
        let heartbeat = tokio::spawn(beat(db.clone(), token.clone(), halted.clone()));
        let (end, totals, mut logged, unlogged) = self.write_all(halted).await;
        heartbeat.abort();
        let (state, mut summary) = match &end {
            End::Replaced => return,
            End::Finished => (ImportState::Finished, "import finished".to_owned()),
            End::Stopped => (
                ImportState::Finished,
                "import stopped on request".to_owned(),
            ),
            End::Failed(why) => (ImportState::Failed, format!("import failed: {why}")),
        };
        summary.push_str(&format!(
            "; {} rows imported ({} new subscribers, {} updated), {} skipped",
            totals.imported, totals.created, totals.updated, totals.skipped
        ));
        let mut lines = Vec::new();
        if unlogged > 0 {
            lines.push(stamped(&format!(
                "{unlogged} more skipped rows were not logged (the log keeps {IMPORT_LOG_LINES_MAX} lines)"
            )));
        }
        lines.push(stamped(&summary));
        let ended = async {
            let txn = db.begin().await?;
            if store::end(&txn, &token, state, now()).await? {
                logged = store::append_log(&txn, logged, &lines).await?;
            }
            txn.commit().await
        };
        if let Err(err) = ended.await {
            // The lease runs out and the job is reported failed.
            tracing::error!(error = %err, "the import's end could not be recorded");
        }
        tracing::info!(
            imported = totals.imported,
            skipped = totals.skipped,
            logged,
            "{summary}"
        );
    }

    /// Reads and writes every batch; returns how it ended, the counts, and the log's length.
    async fn write_all(mut self, halted: Arc<Notify>) -> (End, Progress, i32, u64) {
        let (sender, mut batches) = mpsc::channel(READ_AHEAD);
        let columns = self.columns;
        let delimiter = self.options.delimiter;
        let reader = self.source.take().map(|source| {
            tokio::task::spawn_blocking(move || read(source, columns, delimiter, sender))
        });
        let end = loop {
            let next = tokio::select! {
                next = batches.recv() => next,
                () = halted.notified() => break self.halt_reason().await,
            };
            match next {
                None => break End::Finished,
                Some(Read::Failed(why)) => break End::Failed(why),
                Some(Read::Total(total)) => {
                    match store::set_total(&self.db, &self.token, total).await {
                        Ok(true) => {}
                        Ok(false) => break self.halt_reason().await,
                        Err(err) => break End::Failed(format!("the database failed: {err}")),
                    }
                }
                Some(Read::Batch(batch)) => match self.write(batch).await {
                    Ok(true) => {}
                    Ok(false) => break self.halt_reason().await,
                    Err(why) => break End::Failed(why),
                },
            }
        };
        // The reader stops at its next send once the receiver is gone.
        drop(batches);
        if let Some(reader) = reader {
            let _ = reader.await;
        }
        (end, self.totals, self.logged, self.unlogged)
    }

    /// Why the job's row no longer takes this attempt's batches: a stop, or another attempt took it over.
    async fn halt_reason(&self) -> End {
        match store::job(&self.db).await {
            Ok(Some(job))
                if job.token == self.token && job.status == ImportState::Stopping.as_str() =>
            {
                End::Stopped
            }
            Ok(Some(job)) if job.token == self.token => {
                End::Failed("the job's state changed under it".into())
            }
            Ok(_) => End::Replaced,
            Err(err) => End::Failed(format!("the database failed: {err}")),
        }
    }

    /// Writes one batch with its counts and log lines; false when the job no longer takes it (nothing written).
    async fn write(&mut self, batch: Batch) -> Result<bool, String> {
        let mut lines = Vec::new();
        let room = (IMPORT_LOG_LINES_MAX - CLOSING_LINES - self.logged).max(0);
        for (line, why) in &batch.skipped {
            if lines.len() < usize::try_from(room).unwrap_or(0) {
                lines.push(stamped(&format!("skipping line {line}: {why}")));
            }
        }
        let unlogged = (batch.skipped.len() - lines.len()) as u64;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_write(&batch, &lines).await {
                Ok(Some(progress)) => {
                    self.totals.imported += progress.imported;
                    self.totals.created += progress.created;
                    self.totals.updated += progress.updated;
                    self.totals.skipped += progress.skipped;
                    self.logged = progress.logged;
                    self.unlogged += unlogged;
                    return Ok(true);
                }
                Ok(None) => return Ok(false),
                Err(ServiceError::Unavailable(err)) if attempt < ATTEMPTS => {
                    tracing::warn!(error = %err, attempt, "an import batch will be retried");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(ServiceError::Invalid(err)) => return Err(err.0),
                Err(err) => return Err(format!("the database failed: {err}")),
            }
        }
    }

    async fn try_write(
        &self,
        batch: &Batch,
        lines: &[String],
    ) -> Result<Option<Progress>, ServiceError> {
        let at = now();
        let txn = begin_write(&self.db).await?;
        let counts = import_batch(&txn, &batch.rows, &self.options, at).await?;
        let logged = store::append_log(&txn, self.logged, lines).await?;
        let progress = Progress {
            imported: counts.imported,
            created: counts.created,
            updated: counts.updated,
            skipped: batch.skipped.len() as u64,
            logged,
        };
        let before = self.totals.imported;
        if !store::advance(&txn, &self.token, before, progress, at).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        if let Err(err) = txn.commit().await {
            // Whether the commit happened is unknown; the job's row says (its count moves with the batch).
            return match store::job(&self.db).await {
                Ok(Some(job))
                    if job.token == self.token
                        && u64::try_from(job.imported).ok() == Some(before + progress.imported) =>
                {
                    Ok(Some(progress))
                }
                _ => Err(err.into()),
            };
        }
        Ok(Some(progress))
    }
}

/// Renews the lease until the job ends (also while it stops: the reader may take a moment to wind down), and says
/// when it should stop.
async fn beat(db: DatabaseConnection, token: String, halted: Arc<Notify>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match store::beat(&db, &token, now()).await {
            Ok(true) => {}
            Ok(false) => halted.notify_one(),
            // A missed beat: the lease covers several.
            Err(err) => tracing::warn!(error = %err, "the import's heartbeat failed"),
        }
    }
}

/// The reader: counts the lines, then sends the rows in batches. Runs on a blocking thread.
fn read(mut source: Source, columns: ImportColumns, delimiter: u8, sender: mpsc::Sender<Read>) {
    let failed = |err: std::io::Error| Read::Failed(format!("the file cannot be read: {err}"));
    match source.with_reader(|input| count_lines(input, &|| sender.is_closed())) {
        Ok(lines) => {
            if sender
                .blocking_send(Read::Total(lines.saturating_sub(1)))
                .is_err()
            {
                return;
            }
        }
        Err(err) => {
            let _ = sender.blocking_send(failed(err));
            return;
        }
    }
    let sent = source.with_reader(|input| {
        let mut records = Records::new(input, delimiter);
        // The header, read and checked when the job started.
        records.next_record()?;
        let mut batch = Batch::default();
        while let Some(record) = records.next_record()? {
            match record {
                Record::Fields { line, fields } => match columns.row(&fields) {
                    Ok(row) => {
                        batch.bytes += fields.iter().map(|f| f.len()).sum::<usize>();
                        batch.rows.push(row);
                    }
                    Err(why) => batch.skipped.push((line, why)),
                },
                Record::TooLong { line } => batch.skipped.push((
                    line,
                    format!("the row is longer than {IMPORT_ROW_MAX_BYTES} bytes"),
                )),
                Record::TooWide { line } => batch.skipped.push((
                    line,
                    format!("the row has more than {IMPORT_COLUMNS_MAX} columns"),
                )),
            }
            let full = batch.rows.len() >= BATCH_ROWS
                || batch.bytes >= BATCH_BYTES
                || batch.skipped.len() >= BATCH_ROWS;
            if full
                && sender
                    .blocking_send(Read::Batch(std::mem::take(&mut batch)))
                    .is_err()
            {
                return Ok(false);
            }
        }
        if !batch.rows.is_empty() || !batch.skipped.is_empty() {
            return Ok(sender.blocking_send(Read::Batch(batch)).is_ok());
        }
        Ok(true)
    });
    if let Err(err) = sent {
        let _ = sender.blocking_send(failed(err));
    }
}
