//! The subscriber import job, as listmonk's importer: one job at a time, started by an upload, read by anyone
//! allowed, stopped or cleared by `DELETE`. Unlike listmonk's, its state is in the database (`store`): every
//! instance reports the same job, and a job whose instance died is reported `failed` once its heartbeat is older
//! than [`LEASE`]. The file itself is the receiving instance's (an unnamed temporary file): the job runs there.
//! `source` reads the file, `job` writes it batch by batch (through `subscribers::import_batch`).

mod archive;
mod job;
mod source;
mod store;

use std::fs::File;
use std::time::Duration;

use sea_orm::sea_query::LockType;
use sea_orm::{DatabaseConnection, TransactionTrait};

use self::source::{Record, Records, Source};
use super::locks::{begin_as, commit, lock_rows};
use super::sql::now;
use super::subscribers::none_missing;
use super::{Background, ServiceError, ensure};
use crate::domain::{
    Access, ImportColumns, ImportMode, ImportOptions, ImportState, Principal, Scope,
    SubscriberScope, ValidationError,
};
use crate::entity::{import_jobs, lists};

/// How often a running job renews its heartbeat (and sees a stop asked by any instance).
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A running job whose heartbeat is older than this is dead: reported `failed`, and a new import may start.
pub const LEASE: Duration = Duration::from_secs(20);

/// Where the import job stands (listmonk's `name`, `total`, `imported`, `status`, and Roster's split of the rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportStats {
    pub name: String,
    pub total: i64,
    pub imported: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub status: ImportState,
}

impl ImportStats {
    fn none() -> Self {
        Self {
            name: String::new(),
            total: 0,
            imported: 0,
            created: 0,
            updated: 0,
            skipped: 0,
            status: ImportState::None,
        }
    }
}

fn stale_before() -> chrono::DateTime<chrono::Utc> {
    now() - chrono::Duration::from_std(LEASE).unwrap_or_default()
}

/// Whether an attempt still holds the job (`importing` or `stopping`) but stopped renewing its lease: its instance
/// died.
fn is_dead(job: &import_jobs::Model) -> bool {
    store::is_held(&job.status) && job.heartbeat_at < stale_before()
}

/// A job row as reported: a dead job is `failed`.
fn stats_of(job: Option<import_jobs::Model>) -> ImportStats {
    let Some(job) = job else {
        return ImportStats::none();
    };
    let status = if is_dead(&job) {
        ImportState::Failed
    } else {
        job.status.parse().unwrap_or(ImportState::Failed)
    };
    ImportStats {
        name: job.name,
        total: job.total,
        imported: job.imported,
        created: job.created,
        updated: job.updated,
        skipped: job.skipped,
        status,
    }
}

/// The import use cases. Cheap to clone.
#[derive(Clone)]
pub struct ImportService {
    db: DatabaseConnection,
    /// Largest CSV accepted, decompressed (`ROSTER_IMPORT_LIMIT`).
    limit: u64,
    /// Where a job running here counts the connections it holds.
    background: Background,
}

/// A task that panicked or was cancelled: a bug, answered 500.
fn task_failed(err: tokio::task::JoinError) -> ServiceError {
    ServiceError::Database(sea_orm::DbErr::Custom(err.to_string()))
}

/// 409: one job at a time.
fn running() -> ServiceError {
    ServiceError::Conflict(
        "an import is already running; stop it with DELETE /api/import/subscribers or wait for it to end".into(),
    )
}

impl ImportService {
    /// `subscribers:import`, with `subscribers:get_all`: an import finds existing subscribers by e-mail whoever may
    /// read them, and its counts (and its subscriptions' scope) would tell a narrower caller who exists.
    fn may_import(who: &Principal) -> bool {
        who.may_import_subscribers() && who.subscriber_scope() == SubscriberScope::Everyone
    }

    pub fn new(db: DatabaseConnection, limit: u64, background: Background) -> Self {
        Self {
            db,
            limit,
            background,
        }
    }

    /// The largest upload and CSV accepted, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn status(&self, who: &Principal) -> Result<ImportStats, ServiceError> {
        ensure(Self::may_import(who))?;
        Ok(stats_of(store::job(&self.db).await?))
    }

    /// The job's log, one line per entry; a job whose instance died gets a last line saying so.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn logs(&self, who: &Principal) -> Result<String, ServiceError> {
        ensure(Self::may_import(who))?;
        let txn = self.db.begin().await?;
        let job = store::job(&txn).await?;
        let mut lines = store::log(&txn).await?;
        txn.commit().await?;
        if let Some(job) = job.filter(is_dead) {
            lines.push(format!(
                "{} failed: the instance running the import stopped answering; {} rows had been imported",
                job.heartbeat_at.format(job::LOG_TIME),
                job.imported
            ));
        }
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        Ok(text)
    }

    /// Starts an import of `upload` (spooled to a temporary file) under `options`: checks the permissions, the
    /// lists and the file's header, claims the importer (409 while another job runs), and starts the job on this
    /// instance. Answers at once, as listmonk does.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn start(
        &self,
        who: &Principal,
        options: ImportOptions,
        upload: File,
        file_name: String,
    ) -> Result<ImportStats, ServiceError> {
        ensure(Self::may_import(who))?;
        if options.mode == ImportMode::Blocklist {
            // A blocklist changes every subscription of the subscribers it names, on any list.
            ensure(who.scope(Access::Manage) == Scope::All)?;
        }
        ensure(who.may_manage_lists(&options.lists))?;
        none_missing(
            "list",
            &lock_rows::<lists::Entity>(
                &self.db,
                lists::Column::Id,
                &options.lists,
                LockType::KeyShare,
            )
            .await?,
        )?;
        let limit = self.limit;
        let delimiter = options.delimiter;
        let (source, columns, ignored) = tokio::task::spawn_blocking(move || {
            let mut source = Source::open(upload, &file_name, limit)?;
            let (columns, ignored) = read_header(&mut source, delimiter)?;
            Ok::<_, ValidationError>((source, columns, ignored))
        })
        .await
        .map_err(task_failed)??;
        let mut opening = vec![job::stamped(&format!("processing '{}'", source.name))];
        opening.extend(source.ignored.iter().map(|entry| {
            job::stamped(&format!(
                "ignoring the ZIP entry '{}'",
                entry.escape_debug()
            ))
        }));
        opening.extend(ignored.iter().map(|column| {
            job::stamped(&format!(
                "ignoring the unknown column '{}'",
                column.escape_debug()
            ))
        }));
        opening.truncate(job::OPENING_LINES_MAX);
        let stats = ImportStats {
            name: source.name.clone(),
            status: ImportState::Importing,
            ..ImportStats::none()
        };
        // Claim, commit and start in a task of their own: a client that leaves (or the upload's timeout) must not
        // leave a claimed job that nothing runs.
        let db = self.db.clone();
        let background = self.background.clone();
        let importer = who.clone();
        let started = tokio::spawn(async move {
            let token = uuid::Uuid::new_v4().to_string();
            let txn = begin_as(&db, &importer).await?;
            let at = now();
            let new = store::NewJob {
                token: &token,
                name: &source.name,
                mode: options.mode,
                caller: importer.name(),
                opening: &opening,
            };
            if !store::claim(&txn, new, at, stale_before()).await? {
                return Err(running());
            }
            txn.commit().await?;
            tokio::spawn(
                job::Job::new(db, importer, token, options, source, columns).run(background),
            );
            Ok(())
        });
        started.await.map_err(task_failed)??;
        Ok(stats)
    }

    /// Refuses (409) while a job runs: checked before an upload is read, so a second one is not spooled only to be
    /// refused. (The claim decides; this spares the upload.)
    pub async fn ensure_idle(&self, who: &Principal) -> Result<(), ServiceError> {
        ensure(Self::may_import(who))?;
        match stats_of(store::job(&self.db).await?).status {
            ImportState::Importing | ImportState::Stopping => Err(running()),
            _ => Ok(()),
        }
    }

    /// Stops the running job (it ends `finished` after the batch in hand: batches are whole or absent), or
    /// forgets a job that is not running, as listmonk's `DELETE` does.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn stop(&self, who: &Principal) -> Result<ImportStats, ServiceError> {
        ensure(Self::may_import(who))?;
        let Some(job) = store::job(&self.db).await? else {
            return Ok(ImportStats::none());
        };
        let stale = stale_before();
        match stats_of(Some(job.clone())).status {
            // Each write commits with the request's Idempotency-Key marked, as every write does.
            ImportState::Importing => {
                let txn = begin_as(&self.db, who).await?;
                store::request_stop(&txn, stale).await?;
                commit(txn).await?;
            }
            ImportState::Finished | ImportState::Failed => {
                // Only the job as read: one that ended meanwhile, or a new one, is shown, not cleared unseen.
                let txn = begin_as(&self.db, who).await?;
                store::clear(&txn, &job.token, &job.status, stale).await?;
                commit(txn).await?;
            }
            ImportState::Stopping | ImportState::None => {}
        }
        Ok(stats_of(store::job(&self.db).await?))
    }
}

/// Reads the CSV's header: its columns, and the names of those ignored.
fn read_header(
    source: &mut Source,
    delimiter: u8,
) -> Result<(ImportColumns, Vec<String>), ValidationError> {
    let header = source.with_reader(|input| {
        // A header that does not end within a row's bound is refused without reading on (a quote never closed).
        let bound = crate::domain::IMPORT_ROW_MAX_BYTES as u64 + 2;
        let mut records = Records::new(std::io::Read::take(input, bound), delimiter);
        Ok(match records.next_record()? {
            None => Err(ValidationError("the file has no header line".into())),
            Some(Record::Fields { fields, .. }) => ImportColumns::from_header(&fields),
            Some(Record::TooLong { .. } | Record::TooWide { .. }) => Err(ValidationError(format!(
                "the header line is longer than {} bytes or has more than {} columns",
                crate::domain::IMPORT_ROW_MAX_BYTES,
                crate::domain::IMPORT_COLUMNS_MAX
            ))),
        })
    });
    header.map_err(|err| ValidationError(format!("the file cannot be read: {err}")))?
}
