//! A running import: a blocking thread reads the file into batches (rows, and log lines for the rows it skips),
//! each row to one of the job's writers chosen by its e-mail, so one e-mail's rows still apply in file order. Each
//! writer writes a batch in one write transaction whose last statement adds its counts to the job's row, so the
//! counts and the data move together and a stop or a takeover leaves no batch half-written. A heartbeat task
//! renews the job's lease and notices a stop asked through any instance.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{mpsc, watch};

use super::source::{Record, Records, Source, count_lines};
use super::store::{self, Progress};
use super::{HEARTBEAT, ImportState};
use crate::domain::{
    IMPORT_COLUMNS_MAX, IMPORT_LOG_LINES_MAX, IMPORT_ROW_MAX_BYTES, ImportColumns, ImportOptions,
    ImportRow, Principal,
};
use crate::service::locks::begin_write;
use crate::service::sql::{is_postgres, now};
use crate::service::subscribers::import_batch;
use crate::service::{Background, ServiceError};

/// Rows in one batch (one transaction).
const BATCH_ROWS: usize = 5000;
/// Bytes of CSV in one batch, at most: rows with large attributes make smaller batches, so memory stays bounded
/// whatever the rows hold.
const BATCH_BYTES: usize = 1024 * 1024;
/// Batches read ahead of each writer.
const READ_AHEAD: usize = 1;
/// Writers of one job on PostgreSQL, each with its own connection: while one waits for the database to write a
/// batch, the other prepares and sends its own, and the database writes two batches on two cores.
pub const WRITERS: usize = 2;
/// Attempts at a batch the database refused for a transient reason (a deadlock, a restart).
const ATTEMPTS: u32 = 5;
/// Follow-up transactions for rows whose new e-mails concurrent writes inserted first (sign-ups of the file's
/// e-mails while it is imported): the first finds them existing, so a second is needed only when they were
/// deleted again meanwhile.
const LATE_ATTEMPTS: u32 = 10;
/// Most log lines written when the job starts (the file, ignored columns and ZIP entries).
pub const OPENING_LINES_MAX: usize = 50;
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

/// What the reader sends a writer.
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
    /// Who started it: every batch checks that its grants still hold (`auth::vouch`).
    importer: Principal,
    token: String,
    options: ImportOptions,
    /// Handed to the reader when the job starts.
    source: Option<Source>,
    columns: ImportColumns,
    /// Skipped rows past the log's bound.
    unlogged: AtomicU64,
}

/// How a job (or one of its writers) ended.
#[derive(Debug)]
enum End {
    Finished,
    /// A stop was asked, or another writer of the job ended early.
    Halted,
    Failed(String),
}

impl Job {
    pub fn new(
        db: DatabaseConnection,
        importer: Principal,
        token: String,
        options: ImportOptions,
        source: Source,
        columns: ImportColumns,
    ) -> Self {
        Self {
            db,
            importer,
            token,
            options,
            source: Some(source),
            columns,
            unlogged: AtomicU64::new(0),
        }
    }

    /// Runs the job to its end, its connections counted in `background` meanwhile (on PostgreSQL the writers and
    /// the heartbeat hold connections of the requests' pool; on SQLite they use the one writer, which the gate
    /// does not count).
    pub async fn run(mut self, background: Background) {
        let _held = is_postgres(&self.db).then(|| background.hold(WRITERS + 1));
        let db = self.db.clone();
        let token = self.token.clone();
        let (halt, _) = watch::channel(false);
        let halt = Arc::new(halt);
        let heartbeat = tokio::spawn(beat(db.clone(), token.clone(), halt.clone()));
        let end = match self.write_all(&halt).await {
            End::Halted => self.halt_reason().await,
            end => Some(end),
        };
        heartbeat.abort();
        let (state, summary) = match &end {
            // Another attempt holds the job now: nothing more to write.
            None => return,
            Some(End::Finished) => (ImportState::Finished, "import finished".to_owned()),
            Some(End::Halted) => (
                ImportState::Finished,
                "import stopped on request".to_owned(),
            ),
            Some(End::Failed(why)) => (ImportState::Failed, format!("import failed: {why}")),
        };
        let unlogged = self.unlogged.load(Ordering::Relaxed);
        let ended = async {
            let txn = db.begin().await?;
            // The counts are the job row's: they moved with the batches that committed.
            if store::end(&txn, &token, state, now()).await?
                && let Some(job) = store::job(&txn).await?
            {
                let mut lines = Vec::new();
                if unlogged > 0 {
                    lines.push(stamped(&format!(
                        "{unlogged} more skipped rows were not logged (the log keeps {IMPORT_LOG_LINES_MAX} lines)"
                    )));
                }
                lines.push(stamped(&format!(
                    "{summary}; {} rows imported ({} new subscribers, {} updated), {} skipped",
                    job.imported, job.created, job.updated, job.skipped
                )));
                store::append_log(&txn, job.logged, &lines).await?;
                tracing::info!(imported = job.imported, skipped = job.skipped, "{summary}");
            }
            txn.commit().await
        };
        if let Err(err) = ended.await {
            // The lease runs out and the job is reported failed.
            tracing::error!(error = %err, "the import's end could not be recorded");
        }
    }

    /// Reads the file and writes its batches, on [`WRITERS`] connections side by side on PostgreSQL (one on
    /// SQLite, which has one writer). Rows go to a writer by their e-mail, so the rows of one e-mail are written by
    /// one writer in file order: they apply as one after the other.
    async fn write_all(&mut self, halt: &watch::Sender<bool>) -> End {
        let writers = if is_postgres(&self.db) { WRITERS } else { 1 };
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..writers).map(|_| mpsc::channel(READ_AHEAD)).unzip();
        let columns = self.columns;
        let delimiter = self.options.delimiter;
        let reader = self.source.take().map(|source| {
            tokio::task::spawn_blocking(move || read(source, columns, delimiter, senders))
        });
        let ends = join_all(
            receivers
                .into_iter()
                .map(|batches| self.writer(batches, halt)),
        )
        .await;
        // The reader stops at its next send once the writers (and their receivers) are gone.
        let read = match reader {
            Some(reader) => reader.await,
            None => Ok(()),
        };
        settle(ends, read)
    }

    /// One writer: writes the batches it is sent until they end, the job halts, or a batch fails (which halts the
    /// other writers).
    async fn writer(&self, mut batches: mpsc::Receiver<Read>, halt: &watch::Sender<bool>) -> End {
        let mut halted = halt.subscribe();
        let end = loop {
            let next = tokio::select! {
                next = batches.recv() => next,
                _ = halted.wait_for(|halted| *halted) => break End::Halted,
            };
            match next {
                None => break End::Finished,
                Some(Read::Failed(why)) => break End::Failed(why),
                Some(Read::Total(total)) => {
                    match store::set_total(&self.db, &self.token, total).await {
                        Ok(true) => {}
                        Ok(false) => break End::Halted,
                        Err(err) => break End::Failed(format!("the database failed: {err}")),
                    }
                }
                Some(Read::Batch(batch)) => match self.write(batch).await {
                    Ok(true) => {}
                    Ok(false) => break End::Halted,
                    Err(why) => break End::Failed(why),
                },
            }
        };
        if !matches!(end, End::Finished) {
            halt.send_replace(true);
        }
        end
    }

    /// Why the job's row no longer takes this attempt's batches: a stop, a change under it, or (`None`) another
    /// attempt took it over.
    async fn halt_reason(&self) -> Option<End> {
        match store::job(&self.db).await {
            Ok(Some(job))
                if job.token == self.token && job.status == ImportState::Stopping.as_str() =>
            {
                Some(End::Halted)
            }
            Ok(Some(job)) if job.token == self.token => {
                Some(End::Failed("the job's state changed under it".into()))
            }
            Ok(_) => None,
            Err(err) => Some(End::Failed(format!("the database failed: {err}"))),
        }
    }

    /// Writes one batch with its counts and log lines; false when the job no longer takes it (nothing written).
    /// Rows a concurrent write made late (see [`import_batch`]) follow in a transaction of their own.
    async fn write(&self, mut batch: Batch) -> Result<bool, String> {
        let mut lines: Vec<String> = batch
            .skipped
            .iter()
            .map(|(line, why)| stamped(&format!("skipping line {line}: {why}")))
            .collect();
        let (mut attempt, mut follow_ups) = (0, 0);
        loop {
            match self.try_write(&batch, &lines).await {
                Ok(Some((unlogged, late))) => {
                    self.unlogged.fetch_add(unlogged, Ordering::Relaxed);
                    if late.is_empty() {
                        return Ok(true);
                    }
                    follow_ups += 1;
                    if follow_ups > LATE_ATTEMPTS {
                        return Err(format!(
                            "concurrent writes kept inserting and deleting {} of the file's e-mails",
                            late.len()
                        ));
                    }
                    let late: HashSet<String> = late.into_iter().collect();
                    batch.rows.retain(|row| late.contains(row.email.as_str()));
                    batch.skipped.clear();
                    lines.clear();
                }
                Ok(None) => return Ok(false),
                Err(Failure::Retry(err)) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    tracing::warn!(error = %err, attempt, "an import batch will be retried");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(Failure::Retry(err)) => return Err(format!("the database failed: {err}")),
                Err(Failure::Fatal(why)) => return Err(why),
            }
        }
    }

    /// One attempt at a batch: how many of its log lines found no room and the e-mails whose rows were left out,
    /// or `None` when the job no longer takes it.
    async fn try_write(
        &self,
        batch: &Batch,
        lines: &[String],
    ) -> Result<Option<(u64, Vec<String>)>, Failure> {
        let at = now();
        let txn = begin_write(&self.db, &self.importer).await?;
        let written = import_batch(&txn, &batch.rows, &self.options, at).await?;
        let counts = written.counts;
        let progress = Progress {
            imported: counts.imported,
            created: counts.created,
            updated: counts.updated,
            skipped: batch.skipped.len() as u64,
        };
        let Some(unlogged) = store::advance(&txn, &self.token, progress, lines, at)
            .await
            .map_err(ServiceError::from)?
        else {
            txn.rollback().await.map_err(ServiceError::from)?;
            return Ok(None);
        };
        // Whether a commit that errs happened is unknown, and another writer's batches move the same counts: the
        // job ends failed rather than risk writing (and counting) the batch twice. Its row counts what committed.
        txn.commit().await.map_err(|err| {
            Failure::Fatal(format!(
                "the database failed while committing a batch: {err}"
            ))
        })?;
        Ok(Some((unlogged, written.late)))
    }
}

/// Why an attempt at a batch failed.
enum Failure {
    /// Nothing was written, and the database may take the batch if asked again.
    Retry(ServiceError),
    /// The job cannot go on.
    Fatal(String),
}

impl From<ServiceError> for Failure {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Unavailable(_) => Failure::Retry(err),
            ServiceError::Invalid(err) => Failure::Fatal(err.0),
            ServiceError::GrantsChanged => Failure::Fatal(
                "the importer's roles or credentials changed while the job ran; it stopped before this batch \
                 (start it again to import the rest under the grants as they are now)"
                    .into(),
            ),
            err => Failure::Fatal(format!("the database failed: {err}")),
        }
    }
}

/// Renews the lease until the job ends (also while it stops: the reader may take a moment to wind down), and halts
/// the writers when the job should stop.
async fn beat(db: DatabaseConnection, token: String, halt: Arc<watch::Sender<bool>>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match store::beat(&db, &token, now()).await {
            Ok(true) => {}
            Ok(false) => {
                halt.send_replace(true);
            }
            // A missed beat: the lease covers several.
            Err(err) => tracing::warn!(error = %err, "the import's heartbeat failed"),
        }
    }
}

/// How a job ends, from its writers' ends and its reader's: a failure wins over a halt, a halt over a finish. A
/// reader that panicked (a defect) fails the job: its writers saw its batches end as if the file had.
fn settle(ends: Vec<End>, read: Result<(), tokio::task::JoinError>) -> End {
    let mut end = match read {
        Ok(()) => End::Finished,
        Err(err) => {
            tracing::error!(error = %err, "an import's reader failed");
            End::Failed("reading the file stopped unexpectedly".into())
        }
    };
    for each in ends {
        match (&end, each) {
            (End::Failed(_), _) | (_, End::Finished) => {}
            (_, each) => end = each,
        }
    }
    end
}

/// The writer (of `writers`) that writes the rows of `email`: FNV-1a of its bytes, so the same e-mail always goes
/// to the same writer.
fn writer_of(email: &str, writers: usize) -> usize {
    let hash = email.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % writers as u64) as usize
}

/// The reader: counts the lines, then sends the rows in batches, each row to its writer ([`writer_of`]). Runs on a
/// blocking thread.
fn read(
    mut source: Source,
    columns: ImportColumns,
    delimiter: u8,
    senders: Vec<mpsc::Sender<Read>>,
) {
    let failed = |err: std::io::Error| Read::Failed(format!("the file cannot be read: {err}"));
    // The job ends when any writer ends early; the first writer hears of the file's total and of its failure.
    let ending = || senders.iter().any(mpsc::Sender::is_closed);
    let first = &senders[0];
    // This pass reads the whole CSV before any row is written: a ZIP entry whose bytes differ from its CRC-32 or
    // size fails the job here (archive.rs checks them at the end), with nothing imported.
    match source.with_reader(|input| count_lines(input, &ending)) {
        Ok(lines) => {
            if first
                .blocking_send(Read::Total(lines.saturating_sub(1)))
                .is_err()
            {
                return;
            }
        }
        Err(err) => {
            let _ = first.blocking_send(failed(err));
            return;
        }
    }
    let sent = source.with_reader(|input| {
        let mut records = Records::new(input, delimiter);
        // The header, read and checked when the job started.
        records.next_record()?;
        let mut batches: Vec<Batch> = senders.iter().map(|_| Batch::default()).collect();
        while let Some(record) = records.next_record()? {
            // Skipped rows are logged by the first writer.
            let (to, skipped) = match record {
                Record::Fields { line, fields } => match columns.row(&fields) {
                    Ok(row) => {
                        let to = writer_of(row.email.as_str(), senders.len());
                        batches[to].bytes += fields.iter().map(|f| f.len()).sum::<usize>();
                        batches[to].rows.push(row);
                        (to, None)
                    }
                    Err(why) => (0, Some((line, why))),
                },
                Record::TooLong { line } => (
                    0,
                    Some((
                        line,
                        format!("the row is longer than {IMPORT_ROW_MAX_BYTES} bytes"),
                    )),
                ),
                Record::TooWide { line } => (
                    0,
                    Some((
                        line,
                        format!("the row has more than {IMPORT_COLUMNS_MAX} columns"),
                    )),
                ),
            };
            let batch = &mut batches[to];
            batch.skipped.extend(skipped);
            let full = batch.rows.len() >= BATCH_ROWS
                || batch.bytes >= BATCH_BYTES
                || batch.skipped.len() >= BATCH_ROWS;
            if full
                && senders[to]
                    .blocking_send(Read::Batch(std::mem::take(batch)))
                    .is_err()
            {
                return Ok(false);
            }
        }
        for (batch, sender) in batches.into_iter().zip(&senders) {
            if (!batch.rows.is_empty() || !batch.skipped.is_empty())
                && sender.blocking_send(Read::Batch(batch)).is_err()
            {
                return Ok(false);
            }
        }
        Ok(true)
    });
    if let Err(err) = sent {
        let _ = first.blocking_send(failed(err));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_that_panicked_fails_the_job_though_every_writer_saw_the_batches_end() {
        let panicked = tokio::task::spawn_blocking(|| panic!("a defect in the reader")).await;
        let end = settle(vec![End::Finished, End::Finished], panicked);
        assert!(
            matches!(&end, End::Failed(why) if why.contains("unexpectedly")),
            "{end:?}"
        );
    }

    #[test]
    fn a_failure_wins_over_a_halt_and_a_halt_over_a_finish() {
        let failed = || End::Failed("why".into());
        assert!(matches!(
            settle(vec![End::Finished, End::Finished], Ok(())),
            End::Finished
        ));
        assert!(matches!(
            settle(vec![End::Finished, End::Halted], Ok(())),
            End::Halted
        ));
        assert!(matches!(
            settle(vec![failed(), End::Halted], Ok(())),
            End::Failed(_)
        ));
        assert!(matches!(
            settle(vec![End::Halted, failed()], Ok(())),
            End::Failed(_)
        ));
    }
}
