//! What the SQLite and PostgreSQL stores share: helpers, the SQL list of active statuses, and
//! the `Store` implementation itself, generated for each backend by [`sql_store!`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::AssertSqlSafe;

use crate::{
    CommandState, Completion, HostCommandRecord, Page, PageRequest, Progress, StoreError, StoreResult, TaggedKind,
};

pub(crate) mod group_commit;

/// Rows written by one multi-row statement: a fleet's rows go in a few statements (each a round
/// trip to the database) rather than one each, and eight columns of 500 rows stay well within
/// SQLite's limit of bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// An agent's write to one of its commands (or the server's, for the events it carries out);
/// writes that arrive together share a transaction ([`group_commit`]).
pub(crate) enum CommandWrite {
    /// Hand the instance's oldest queued command out.
    Dispatch { instance: String, at: i64 },
    /// The first acknowledgement of a command in flight.
    Acknowledge { id: String, target_id: String, at: i64 },
    /// The first completion of a command in flight; `diagnostics` as stored.
    Complete { id: String, target_id: String, succeeded: bool, diagnostics: String, at: i64 },
}

/// What a [`CommandWrite`] did, in the same order.
pub(crate) enum CommandWritten {
    Dispatched(Option<HostCommandRecord>),
    Acknowledged(Option<HostCommandRecord>),
    Completed(Completion),
}

/// The writes to commands waiting for their batch.
pub(crate) type CommandWrites = group_commit::GroupCommit<CommandWrite, CommandWritten>;

/// Everything the generated `Store` implementation names, for a backend module to import.
pub(crate) mod prelude {

    pub(crate) use async_trait::async_trait;
    pub(crate) use landfall_api::Timestamp;
    pub(crate) use landfall_api::landfall::{
        AlarmInfo, AuditRecordInfo, DeploymentEventInfo, HostPoolInfo, Role, TargetGroupInfo,
    };
    pub(crate) use landfall_api::shapes::{
        ApplicationInfo, DeploymentConfigInfo, DeploymentInfo, GenericRevisionInfo, InstanceInfo, RevisionLocation, Tag,
    };
    pub(crate) use serde::de::DeserializeOwned;
    pub(crate) use sqlx::{QueryBuilder, Row};

    pub(crate) use super::group_commit::shared_failure;
    pub(crate) use super::{
        CommandWrite, CommandWrites, CommandWritten, command_state, fetch_limit, from_doc, is_unique_violation,
        kind_name, limited, page_of, read_progress, to_doc, write_progress,
    };
    pub(crate) use crate::capabilities::*;
    pub(crate) use crate::{
        AccessKeyRecord, AgentStatusRecord, AgentUpdateRecord, AuditFilter, Completion, DepartureRecord,
        DeployedFilter, DeploymentFilter, DeploymentRecord, DeploymentStep, Fence, GroupRecord, HostCommandRecord,
        InstanceHistoryRecord, JoinClaim, JoinTokenRecord, LeaseRecord, LogChunkRecord, LogLimit, LogPage, LogStart,
        Notice, Page, PageRequest, RevisionFilter, RevisionRecord, RevisionSort, StoreError, StoreResult, TaggedKind,
        TargetGroupRecord, TargetRecord, TriggerMessage, TriggerState, Unique,
    };
}

/// `DeploymentStatus::ACTIVE` as an SQL list, for `concat!` into static queries (a test keeps
/// the two the same).
macro_rules! active_statuses {
    () => {
        "('Created', 'Queued', 'InProgress', 'Baking', 'Ready')"
    };
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // The database cannot be reached (or no connection came in time).
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(error.into())
            }
            // SQLITE_FULL; PostgreSQL's disk_full (53100).
            sqlx::Error::Database(database) if matches!(database.code().as_deref(), Some("13" | "53100")) => {
                StoreError::Full(database.message().to_owned())
            }
            other => StoreError::Backend(other.into()),
        }
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) fn to_doc<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn from_doc<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::backend(format!("corrupt stored document: {e}")))
}

/// A deployment's engine progress as stored (none yet: the start).
pub(crate) fn read_progress(stored: Option<String>) -> StoreResult<Progress> {
    let Some(text) = stored else { return Ok(Progress::default()) };
    serde_json::from_str(&text).map_err(|e| StoreError::Unreadable(format!("a deployment's progress: {e}")))
}

pub(crate) fn write_progress(progress: &Progress) -> String {
    serde_json::to_string(progress).expect("progress is plain data")
}

pub(crate) fn command_state(stored: String) -> StoreResult<CommandState> {
    CommandState::parse(&stored).ok_or_else(|| StoreError::Unreadable(format!("unknown host command state {stored:?}")))
}

pub(crate) fn kind_name(kind: TaggedKind) -> &'static str {
    match kind {
        TaggedKind::Application => "application",
        TaggedKind::DeploymentGroup => "deploymentgroup",
        TaggedKind::DeploymentConfig => "deploymentconfig",
    }
}

/// Splits `limit + 1` fetched rows into a page: the extra row only says that more follow.
pub(crate) fn page_of<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(&cursor);
        Page { items, next }
    } else {
        Page { items, next: None }
    }
}

pub(crate) fn fetch_limit(page: &PageRequest) -> i64 {
    i64::try_from(page.limit).unwrap_or(i64::MAX - 1) + 1
}

/// `sql` with the page's fetch limit written in. Limits are not bound: SQLite re-plans, on every
/// execution, a statement whose bound LIMIT its planner looked at.
pub(crate) fn limited(sql: &'static str, page: &PageRequest) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!("{sql} LIMIT {}", fetch_limit(page)))
}

/// The whole `Store` implementation for one sqlx backend, written once: its statements number
/// their parameters (`$1`, ...), which SQLite and PostgreSQL both bind by number. A backend
/// module provides its connections (`writer().await` and `reader().await`, a connection for a
/// statement, which fail at once while the database is known to be unreachable), `begin_write`
/// (a transaction in which check-then-write steps do not race), `begin_batch` (a transaction for
/// a batch of writes to rows of their own), `command_writes` (their queue), `close_pools`, and invokes this
/// with its types.
macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty, $conn:ty, $pool:ty) => {
        impl $store {
            /// Makes a write to a command in one transaction with the others queued meanwhile
            /// (see [`crate::sql::group_commit`]).
            async fn write_command(&self, write: CommandWrite) -> StoreResult<CommandWritten> {
                let mut ticket = self.command_writes.enqueue(write);
                let _turn = tokio::select! {
                    biased;
                    answer = ticket.answered() => return answer,
                    turn = self.command_writes.turn() => turn,
                };
                let batch = self.command_writes.take();
                if !batch.is_empty() {
                    self.make_command_writes(batch).await;
                }
                ticket.answered().await
            }

            /// Makes a batch of command writes in one transaction and answers each.
            async fn make_command_writes(&self, batch: Vec<crate::sql::group_commit::Queued<CommandWrite, CommandWritten>>) {
                let mut made = Vec::with_capacity(batch.len());
                let result: StoreResult<()> = async {
                    let mut tx = self.begin_batch().await?;
                    let writes: Vec<&CommandWrite> = batch.iter().map(|queued| &queued.write).collect();
                    let together = make_command_writes_together(&mut tx, &writes).await?;
                    for (write, settled) in writes.into_iter().zip(together) {
                        made.push(match settled {
                            Some(written) => written,
                            None => make_command_write(&mut tx, write).await?,
                        });
                    }
                    tx.commit().await?;
                    Ok(())
                }
                .await;
                match result {
                    Ok(()) => {
                        for (queued, written) in batch.into_iter().zip(made) {
                            queued.answer(Ok(written));
                        }
                    }
                    Err(error) => {
                        // An unreachable store fails every batch: the requests' own errors say
                        // so (at most once a second), so only other failures are written here.
                        if !matches!(error, StoreError::Unavailable(_)) {
                            tracing::warn!(%error, writes = batch.len(), "cannot record the agents' reports");
                        }
                        for queued in batch {
                            queued.answer(Err(shared_failure(&error)));
                        }
                    }
                }
            }

            async fn group_ids_of_application(&self, application_id: &str) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT id FROM deployment_groups WHERE application_id = $1")
                    .bind(application_id)
                    .fetch_all(&mut *self.writer().await?)
                    .await?)
            }
        }

        /// A batch's writes of each kind made in a few multi-row statements (hand-outs, then
        /// acknowledgements, then completions). Each write they settle gets its answer; the
        /// rest (a second write to one command or host in the batch, or a command not in
        /// flight) are `None`, to be made one by one after.
        async fn make_command_writes_together(
            connection: &mut $conn,
            writes: &[&CommandWrite],
        ) -> StoreResult<Vec<Option<CommandWritten>>> {
            use std::collections::HashSet;
            // A second write to the same command (or a host's second poll) is made on its own
            // after the first: a row written twice by one statement takes either value.
            let (mut polled, mut acknowledged, mut completed) = (HashSet::new(), HashSet::new(), HashSet::new());
            let mut made: Vec<Option<CommandWritten>> = writes.iter().map(|_| None).collect();

            let dispatches: Vec<(usize, &str, i64)> = writes
                .iter()
                .enumerate()
                .filter_map(|(index, write)| match write {
                    CommandWrite::Dispatch { instance, at } => Some((index, instance.as_str(), *at)),
                    _ => None,
                })
                .filter(|(_, instance, _)| polled.insert(*instance))
                .collect();
            for chunk in dispatches.chunks(crate::sql::ROWS_PER_STATEMENT) {
                // Each host's oldest queued command. Of two servers picking the same command, the
                // second finds it no longer Queued when the first's update lets go of the row.
                let mut query = QueryBuilder::<$db>::new(
                    "UPDATE host_commands SET state = 'Dispatched', dispatched_at = asked.column2 FROM (",
                );
                query.push_values(chunk, |mut row, (_, instance, at)| {
                    row.push_bind(*instance).push_bind(*at);
                });
                query.push(
                    ") AS asked WHERE host_commands.seq = (SELECT queued.seq FROM host_commands AS queued
                     WHERE queued.target_id = asked.column1 AND queued.state = 'Queued' ORDER BY queued.seq LIMIT 1)
                     AND host_commands.state = 'Queued'",
                );
                let mut handed = written_commands(connection, query, |command| &command.target_id).await?;
                for (index, instance, _) in chunk {
                    made[*index] = Some(CommandWritten::Dispatched(handed.remove(*instance)));
                }
            }

            let acknowledgements: Vec<(usize, &str, &str, i64)> = writes
                .iter()
                .enumerate()
                .filter_map(|(index, write)| match write {
                    CommandWrite::Acknowledge { id, target_id, at } => Some((index, id.as_str(), target_id.as_str(), *at)),
                    _ => None,
                })
                .filter(|(_, id, ..)| acknowledged.insert(*id))
                .collect();
            for chunk in acknowledgements.chunks(crate::sql::ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::<$db>::new(
                    "UPDATE host_commands SET acknowledged_at = COALESCE(acknowledged_at, acked.column3) FROM (",
                );
                query.push_values(chunk, |mut row, (_, id, target_id, at)| {
                    row.push_bind(*id).push_bind(*target_id).push_bind(*at);
                });
                query.push(
                    ") AS acked WHERE host_commands.id = acked.column1 AND host_commands.target_id = acked.column2
                     AND host_commands.state = 'Dispatched'",
                );
                let mut returned = written_commands(connection, query, |command| &command.id).await?;
                for (index, id, ..) in chunk {
                    if let Some(command) = returned.remove(*id) {
                        made[*index] = Some(CommandWritten::Acknowledged(Some(command)));
                    }
                }
            }

            let completions: Vec<(usize, &str, &str, &'static str, &str, i64)> = writes
                .iter()
                .enumerate()
                .filter_map(|(index, write)| match write {
                    CommandWrite::Complete { id, target_id, succeeded, diagnostics, at } => Some((
                        index,
                        id.as_str(),
                        target_id.as_str(),
                        if *succeeded { "Succeeded" } else { "Failed" },
                        diagnostics.as_str(),
                        *at,
                    )),
                    _ => None,
                })
                .filter(|(_, id, ..)| completed.insert(*id))
                .collect();
            for chunk in completions.chunks(crate::sql::ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::<$db>::new(
                    "UPDATE host_commands SET state = done.column3, diagnostics = done.column4,
                     completed_at = done.column5, acknowledged_at = COALESCE(acknowledged_at, done.column5) FROM (",
                );
                query.push_values(chunk, |mut row, (_, id, target_id, state, diagnostics, at)| {
                    row.push_bind(*id).push_bind(*target_id).push_bind(*state).push_bind(*diagnostics).push_bind(*at);
                });
                query.push(
                    ") AS done WHERE host_commands.id = done.column1 AND host_commands.target_id = done.column2
                     AND host_commands.state = 'Dispatched'",
                );
                let mut returned = written_commands(connection, query, |command| &command.id).await?;
                for (index, id, ..) in chunk {
                    if let Some(command) = returned.remove(*id) {
                        made[*index] = Some(CommandWritten::Completed(Completion::Recorded(Box::new(command))));
                    }
                }
            }
            Ok(made)
        }

        /// Runs a multi-row update of commands; the commands it wrote, by `key`.
        async fn written_commands(
            connection: &mut $conn,
            mut query: QueryBuilder<$db>,
            key: fn(&HostCommandRecord) -> &String,
        ) -> StoreResult<std::collections::HashMap<String, HostCommandRecord>> {
            query.push(
                " RETURNING seq, id, deployment_id, target_id, lifecycle_event, state, created_at, dispatched_at,
                 acknowledged_at, completed_at, diagnostics",
            );
            let mut written = std::collections::HashMap::new();
            for row in query.build().fetch_all(&mut *connection).await? {
                let command = command_from_row(&row)?;
                written.insert(key(&command).clone(), command);
            }
            Ok(written)
        }

        /// One command write, inside its batch's transaction: made as a batch of one; if that
        /// writes nothing, answered as the command stands.
        async fn make_command_write(connection: &mut $conn, write: &CommandWrite) -> StoreResult<CommandWritten> {
            if let Some(written) = make_command_writes_together(connection, &[write]).await?.pop().flatten() {
                return Ok(written);
            }
            match write {
                CommandWrite::Dispatch { .. } => Ok(CommandWritten::Dispatched(None)),
                CommandWrite::Acknowledge { id, target_id, .. } => {
                    // No longer in flight (or not this target's).
                    let row = sqlx::query("SELECT * FROM host_commands WHERE id = $1 AND target_id = $2")
                        .bind(id)
                        .bind(target_id)
                        .fetch_optional(&mut *connection)
                        .await?;
                    Ok(CommandWritten::Acknowledged(row.as_ref().map(command_from_row).transpose()?))
                }
                CommandWrite::Complete { id, target_id, .. } => {
                    let state: Option<String> =
                        sqlx::query_scalar("SELECT state FROM host_commands WHERE id = $1 AND target_id = $2")
                            .bind(id)
                            .bind(target_id)
                            .fetch_optional(&mut *connection)
                            .await?;
                    Ok(CommandWritten::Completed(match state.map(command_state).transpose()? {
                        None => Completion::Unknown,
                        Some(crate::CommandState::Succeeded | crate::CommandState::Failed) => Completion::Duplicate,
                        Some(_) => Completion::NotInFlight,
                    }))
                }
            }
        }

        /// Brings the schema up to date, in one transaction; `lock` (a statement run first)
        /// makes servers starting together on one database wait for each other.
        async fn migrate(connection: &mut $conn, schema: &crate::schema::Schema, lock: Option<&'static str>) -> StoreResult<()> {
            let mut tx = sqlx::Connection::begin(connection).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            let applied: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(&mut *tx).await?;
            let newest_known = schema.newest();
            if let Some(newer) = applied.iter().copied().filter(|version| *version > newest_known).max() {
                // A newer release migrated the store: run on it if that release says this one can.
                let floor: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(crate::schema::compatible_from_key(newer))
                    .fetch_optional(&mut *tx)
                    .await?;
                return match floor.and_then(|floor| floor.parse::<i64>().ok()) {
                    Some(floor) if floor <= newest_known => Ok(tx.commit().await?),
                    _ => Err(StoreError::backend(format!(
                        "the database has schema version {newer}, newer than this Landfall knows ({newest_known}) and not usable by it; upgrade Landfall"
                    ))),
                };
            }
            let now = Timestamp::from_system(std::time::SystemTime::now()).whole_seconds();
            for (version, statements) in schema.migrations {
                if applied.contains(version) {
                    continue;
                }
                sqlx::raw_sql(sqlx::AssertSqlSafe(*statements)).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                .bind(crate::schema::compatible_from_key(newest_known))
                .bind(schema.compatible_from.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        /// The schema version of a store and whether this Landfall can run on it, read without
        /// changing anything.
        async fn schema_status(pool: &$pool, schema: &crate::schema::Schema) -> StoreResult<crate::SchemaStatus> {
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations").fetch_one(pool).await?;
            let applied = applied.ok_or(StoreError::NotFound)?;
            let floor: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                .bind(crate::schema::compatible_from_key(applied))
                .fetch_optional(pool)
                .await?;
            Ok(crate::SchemaStatus {
                applied,
                known: schema.newest(),
                compatible_from: floor.and_then(|floor| floor.parse().ok()),
            })
        }

        fn target_record(row: &$row) -> StoreResult<TargetRecord> {
            Ok(TargetRecord {
                deployment_id: row.try_get("deployment_id")?,
                target_id: row.try_get("target_id")?,
                position: row.try_get("position")?,
                target: doc_column(row, "doc")?,
            })
        }

        fn doc_column<T: DeserializeOwned>(row: &$row, column: &str) -> StoreResult<T> {
            from_doc(row.try_get::<&str, _>(column)?)
        }

        fn access_key_from_row(row: &$row) -> StoreResult<AccessKeyRecord> {
            let role: String = row.try_get("role")?;
            Ok(AccessKeyRecord {
                access_key_id: row.try_get("access_key_id")?,
                secret_access_key: row.try_get("secret_access_key")?,
                role: Role::parse(&role).ok_or_else(|| StoreError::backend(format!("unknown stored role {role}")))?,
                description: row.try_get("description")?,
                created_at: Timestamp(row.try_get("created_at")?),
                revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
                instance_name: row.try_get("instance_name")?,
            })
        }

        fn agent_update_from_row(row: &$row) -> StoreResult<AgentUpdateRecord> {
            Ok(AgentUpdateRecord {
                instance_name: row.try_get("instance_name")?,
                rollout_id: row.try_get("rollout_id")?,
                version: row.try_get("version")?,
                sha256: row.try_get("sha256")?,
                max_unavailable: u32::try_from(row.try_get::<i64, _>("max_unavailable")?).unwrap_or(u32::MAX),
                requested_at: Timestamp(row.try_get("requested_at")?),
                offered_at: row.try_get::<Option<i64>, _>("offered_at")?.map(Timestamp),
                finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(Timestamp),
                outcome: row.try_get("outcome")?,
            })
        }

        fn join_token_from_row(row: &$row) -> StoreResult<JoinTokenRecord> {
            Ok(JoinTokenRecord {
                token_id: row.try_get("token_id")?,
                secret_sha256: row.try_get("secret_sha256")?,
                tags: doc_column(row, "tags")?,
                description: row.try_get("description")?,
                created_at: Timestamp(row.try_get("created_at")?),
                expires_at: Timestamp(row.try_get("expires_at")?),
                used_at: row.try_get::<Option<i64>, _>("used_at")?.map(Timestamp),
                used_by: row.try_get("used_by")?,
            })
        }

        fn group_from_row(row: &$row) -> StoreResult<GroupRecord> {
            Ok(GroupRecord { application_id: row.try_get("application_id")?, info: doc_column(row, "doc")? })
        }

        /// Fails with LimitExceeded(limit) if `count_sql` (with one optional bound argument) counts more
        /// than `limit` rows. Called after the insert it guards, inside its transaction, so concurrent
        /// creates cannot overshoot, and a name conflict is reported before the limit.
        async fn check_limit(
            tx: &mut $conn,
            count_sql: &'static str,
            argument: Option<&str>,
            limit: usize,
        ) -> StoreResult<()> {
            let mut query = sqlx::query_scalar::<_, i64>(count_sql);
            if let Some(argument) = argument {
                query = query.bind(argument);
            }
            let count = query.fetch_one(&mut *tx).await?;
            if usize::try_from(count).unwrap_or(usize::MAX) > limit {
                return Err(StoreError::LimitExceeded(limit));
            }
            Ok(())
        }

        /// Inserts a new deployment with its targets and records the use of its revision (see
        /// [`Store::create_deployment`]).
        async fn insert_deployment(
            tx: &mut $conn,
            deployment: &DeploymentRecord,
            targets: &[TargetRecord],
            revision: &RevisionRecord,
        ) -> StoreResult<()> {
            if deployment.exclusive {
                let active: Option<String> = sqlx::query_scalar(concat!(
                    "SELECT id FROM deployments WHERE group_id = $1 AND exclusive = 1 AND status IN ",
                    active_statuses!(),
                    " ORDER BY seq LIMIT 1"
                ))
                .bind(&deployment.group_id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(active) = active {
                    return Err(StoreError::ActiveDeployment(active));
                }
            }
            let info = &deployment.info;
            let result = sqlx::query(
                "INSERT INTO deployments
                 (id, application_id, group_id, status, exclusive, create_time, external_id, config_name, doc, progress, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)",
            )
            .bind(deployment.id())
            .bind(&deployment.application_id)
            .bind(&deployment.group_id)
            .bind(info.status.as_ref().map(|s| s.as_str()).unwrap_or("Created"))
            .bind(i64::from(deployment.exclusive))
            .bind(info.create_time.unwrap_or_default().0)
            .bind(&info.external_id)
            .bind(info.deployment_config_name.as_deref().unwrap_or_default())
            .bind(to_doc(info))
            .bind(write_progress(&deployment.progress))
            .execute(&mut *tx)
            .await;
            match result {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::AlreadyExists(Unique::Deployment));
                }
                other => other?,
            };
            for target in targets {
                sqlx::query("INSERT INTO deployment_targets (deployment_id, target_id, position, doc) VALUES ($1, $2, $3, $4)")
                    .bind(&target.deployment_id)
                    .bind(&target.target_id)
                    .bind(target.position)
                    .bind(to_doc(&target.target))
                    .execute(&mut *tx)
                    .await?;
            }
            insert_revision(tx, revision, false).await?;
            let used = info.create_time.unwrap_or_default().0;
            sqlx::query(
                "UPDATE revisions SET first_used_time = COALESCE(first_used_time, $1), last_used_time = $2
                 WHERE application_id = $3 AND revision_key = $4",
            )
            .bind(used)
            .bind(used)
            .bind(&revision.application_id)
            .bind(&revision.key)
            .execute(&mut *tx)
            .await?;
            Ok(())
        }

        /// Replaces a deployment row if its version is still the record's, bumping it.
        async fn write_deployment(connection: &mut $conn, deployment: &DeploymentRecord) -> StoreResult<()> {
            let done = sqlx::query(
                "UPDATE deployments SET status = $1, doc = $2, progress = $3, version = version + 1 WHERE id = $4 AND version = $5",
            )
            .bind(deployment.info.status.as_ref().map(|s| s.as_str()).unwrap_or("Created"))
            .bind(to_doc(&deployment.info))
            .bind(write_progress(&deployment.progress))
            .bind(deployment.id())
            .bind(deployment.version)
            .execute(&mut *connection)
            .await?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            let exists: Option<i64> = sqlx::query_scalar("SELECT version FROM deployments WHERE id = $1")
                .bind(deployment.id())
                .fetch_optional(connection)
                .await?;
            Err(match exists {
                Some(_) => StoreError::Changed(format!("deployment {}", deployment.id())),
                None => StoreError::NotFound,
            })
        }

        fn command_from_row(row: &$row) -> StoreResult<HostCommandRecord> {
            let at =
                |column: &str| -> StoreResult<Option<Timestamp>> { Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp)) };
            Ok(HostCommandRecord {
                id: row.try_get("id")?,
                deployment_id: row.try_get("deployment_id")?,
                target_id: row.try_get("target_id")?,
                lifecycle_event: row.try_get("lifecycle_event")?,
                state: command_state(row.try_get("state")?)?,
                created_at: Timestamp(row.try_get("created_at")?),
                dispatched_at: at("dispatched_at")?,
                acknowledged_at: at("acknowledged_at")?,
                completed_at: at("completed_at")?,
                diagnostics: row.try_get::<Option<&str>, _>("diagnostics")?.map(from_doc).transpose()?,
                seq: row.try_get("seq")?,
            })
        }

        /// Registers a revision. If the application has it already, `update_description` decides
        /// whether the new description replaces the old one; nothing else changes.
        async fn insert_revision(
            connection: &mut $conn,
            revision: &RevisionRecord,
            update_description: bool,
        ) -> StoreResult<()> {
            let sql = if update_description {
                "INSERT INTO revisions (application_id, revision_key, s3_bucket, s3_key, register_time, location, description)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (application_id, revision_key) DO UPDATE SET description = excluded.description"
            } else {
                "INSERT INTO revisions (application_id, revision_key, s3_bucket, s3_key, register_time, location, description)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (application_id, revision_key) DO NOTHING"
            };
            let s3 = revision.location.s3_location.as_ref();
            sqlx::query(sql)
                .bind(&revision.application_id)
                .bind(&revision.key)
                .bind(s3.and_then(|s3| s3.bucket.clone()))
                .bind(s3.and_then(|s3| s3.key.clone()))
                .bind(revision.info.register_time.unwrap_or_default().0)
                .bind(to_doc(&revision.location))
                .bind(&revision.info.description)
                .execute(connection)
                .await?;
            Ok(())
        }

        fn ecs_service_key(group: &GroupRecord) -> Option<String> {
            let service = group.info.ecs_services.as_ref()?.first()?;
            Some(format!("{}:{}", service.cluster_name.as_deref()?, service.service_name.as_deref()?))
        }

        fn revision_from_row(row: &$row) -> StoreResult<RevisionRecord> {
            Ok(RevisionRecord {
                application_id: row.try_get("application_id")?,
                key: row.try_get("revision_key")?,
                location: doc_column(row, "location")?,
                info: GenericRevisionInfo {
                    description: row.try_get("description")?,
                    deployment_groups: None,
                    first_used_time: row.try_get::<Option<i64>, _>("first_used_time")?.map(Timestamp),
                    last_used_time: row.try_get::<Option<i64>, _>("last_used_time")?.map(Timestamp),
                    register_time: Some(Timestamp(row.try_get("register_time")?)),
                },
            })
        }

        fn deployment_from_row(row: &$row) -> StoreResult<DeploymentRecord> {
            Ok(DeploymentRecord {
                application_id: row.try_get("application_id")?,
                group_id: row.try_get("group_id")?,
                exclusive: row.try_get::<i64, _>("exclusive")? != 0,
                info: doc_column(row, "doc")?,
                progress: read_progress(row.try_get("progress")?)?,
                version: row.try_get("version")?,
            })
        }

        fn instance_arn(instance: &InstanceInfo) -> String {
            instance.iam_user_arn.clone().or_else(|| instance.iam_session_arn.clone()).unwrap_or_default()
        }

        #[async_trait]
        impl Coordination for $store {
            async fn init_meta(&self, key: &str, value: &str) -> StoreResult<String> {
                sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&mut *self.writer().await?)
                    .await?;
                Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_one(&mut *self.writer().await?)
                    .await?)
            }

            async fn acquire_lease(
                &self,
                name: &str,
                holder: &str,
                now: Timestamp,
                until: Timestamp,
            ) -> StoreResult<Option<Fence>> {
                leases::acquire(&mut *self.writer().await?, name, holder, now, until).await
            }

            async fn renew_leases(&self, holder: &str, until: Timestamp) -> StoreResult<Vec<Fence>> {
                leases::renew(&mut *self.writer().await?, holder, until).await
            }

            async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(&mut *self.writer().await?)
                    .await?;
                Ok(())
            }

            async fn leases(&self) -> StoreResult<Vec<LeaseRecord>> {
                leases::all(&mut *self.reader().await?).await
            }

            async fn publish(&self, notice: &Notice) -> StoreResult<()> {
                self.publish_notice(notice).await
            }

            async fn subscribe(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Notice>>> {
                self.subscribe_notices().await
            }

            async fn close(&self) {
                self.close_pools().await
            }

            async fn schema_version(&self) -> StoreResult<i64> {
                Ok(sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
                    .fetch_one(&mut *self.reader().await?)
                    .await?)
            }
        }

        #[async_trait]
        impl Credentials for $store {
            async fn create_access_key(&self, key: &AccessKeyRecord, limit: usize) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let result = sqlx::query(
                    "INSERT INTO access_keys
                     (access_key_id, secret_access_key, role, description, created_at, revoked_at, instance_name)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&key.access_key_id)
                .bind(&key.secret_access_key)
                .bind(key.role.as_str())
                .bind(&key.description)
                .bind(key.created_at.0)
                .bind(key.revoked_at.map(|t| t.0))
                .bind(&key.instance_name)
                .execute(&mut *tx)
                .await;
                match result {
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::AlreadyExists(Unique::AccessKey));
                    }
                    other => other?,
                };
                check_limit(&mut tx, "SELECT COUNT(*) FROM access_keys", None, limit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
                let row = sqlx::query("SELECT * FROM access_keys WHERE access_key_id = $1")
                    .bind(access_key_id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                row.as_ref().map(access_key_from_row).transpose()
            }

            async fn list_access_keys(&self, page: &PageRequest) -> StoreResult<Page<AccessKeyRecord>> {
                let rows =
                    sqlx::query(limited("SELECT * FROM access_keys WHERE access_key_id > $1 ORDER BY access_key_id", page))
                        .bind(page.after.as_deref().unwrap_or(""))
                        .fetch_all(&mut *self.reader().await?)
                        .await?;
                let items = rows.iter().map(access_key_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok(page_of(items, page.limit, |key| key.access_key_id.clone()))
            }

            async fn revoke_access_key(&self, access_key_id: &str, at: Timestamp) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT access_key_id FROM access_keys WHERE access_key_id = $1")
                        .bind(access_key_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("UPDATE access_keys SET revoked_at = $1 WHERE access_key_id = $2 AND revoked_at IS NULL")
                    .bind(at.0)
                    .bind(access_key_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn revoke_instance_keys(&self, instance_name: &str, at: Timestamp) -> StoreResult<Vec<String>> {
                let mut tx = self.begin_write().await?;
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT access_key_id FROM access_keys WHERE instance_name = $1 AND revoked_at IS NULL ORDER BY access_key_id",
                )
                .bind(instance_name)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query("UPDATE access_keys SET revoked_at = $1 WHERE instance_name = $2 AND revoked_at IS NULL")
                    .bind(at.0)
                    .bind(instance_name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(ids)
            }

            async fn keys_revoked_since(&self, since: Timestamp) -> StoreResult<Vec<AccessKeyRecord>> {
                let rows = sqlx::query("SELECT * FROM access_keys WHERE revoked_at >= $1 ORDER BY revoked_at, access_key_id")
                    .bind(since.0)
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter().map(access_key_from_row).collect()
            }

            async fn end_session(&self, nonce: &str, expires_at: Timestamp, now: Timestamp) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM ended_sessions WHERE expires_at < $1").bind(now.0).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO ended_sessions (nonce, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(nonce)
                    .bind(expires_at.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn session_ended(&self, nonce: &str) -> StoreResult<bool> {
                let found: Option<String> = sqlx::query_scalar("SELECT nonce FROM ended_sessions WHERE nonce = $1")
                    .bind(nonce)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                Ok(found.is_some())
            }
        }

        #[async_trait]
        impl AgentUpdates for $store {
            async fn request_agent_updates(&self, requests: &[AgentUpdateRecord]) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                for request in requests {
                    sqlx::query(
                        "INSERT INTO agent_updates (instance_name, rollout_id, version, sha256, max_unavailable, requested_at, \
                         offered_at, finished_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL) \
                         ON CONFLICT (instance_name) DO UPDATE SET rollout_id = excluded.rollout_id, version = excluded.version, \
                         sha256 = excluded.sha256, max_unavailable = excluded.max_unavailable, \
                         requested_at = excluded.requested_at, offered_at = NULL, finished_at = NULL, outcome = NULL",
                    )
                    .bind(&request.instance_name)
                    .bind(&request.rollout_id)
                    .bind(&request.version)
                    .bind(&request.sha256)
                    .bind(i64::from(request.max_unavailable))
                    .bind(request.requested_at.0)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn open_agent_updates(&self) -> StoreResult<Vec<AgentUpdateRecord>> {
                let rows = sqlx::query("SELECT * FROM agent_updates WHERE finished_at IS NULL ORDER BY instance_name")
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter().map(agent_update_from_row).collect()
            }

            async fn agent_updates(&self) -> StoreResult<Vec<AgentUpdateRecord>> {
                let rows = sqlx::query("SELECT * FROM agent_updates ORDER BY instance_name")
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter().map(agent_update_from_row).collect()
            }

            async fn offer_agent_update(&self, instance_name: &str, rollout_id: &str, now: Timestamp) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let offered = sqlx::query(
                    "UPDATE agent_updates SET offered_at = $1 WHERE instance_name = $2 AND rollout_id = $3 \
                     AND offered_at IS NULL AND finished_at IS NULL AND max_unavailable > \
                     (SELECT COUNT(*) FROM agent_updates WHERE rollout_id = $3 AND offered_at IS NOT NULL AND finished_at IS NULL)",
                )
                .bind(now.0)
                .bind(instance_name)
                .bind(rollout_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(offered.rows_affected() == 1)
            }

            async fn finish_agent_update(
                &self,
                instance_name: &str,
                rollout_id: &str,
                now: Timestamp,
                outcome: &str,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE agent_updates SET finished_at = $1, outcome = $2 \
                     WHERE instance_name = $3 AND rollout_id = $4 AND finished_at IS NULL",
                )
                .bind(now.0)
                .bind(outcome)
                .bind(instance_name)
                .bind(rollout_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }

        #[async_trait]
        impl Joining for $store {
            async fn create_join_token(&self, token: &JoinTokenRecord, limit: usize) -> StoreResult<()> {
                const KEPT_AFTER_EXPIRY: i64 = 7 * 24 * 3600 * 1000;
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM join_tokens WHERE expires_at < $1")
                    .bind(token.created_at.0 - KEPT_AFTER_EXPIRY)
                    .execute(&mut *tx)
                    .await?;
                let result = sqlx::query(
                    "INSERT INTO join_tokens (token_id, secret_sha256, tags, description, created_at, expires_at, used_at, used_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&token.token_id)
                .bind(&token.secret_sha256)
                .bind(to_doc(&token.tags))
                .bind(&token.description)
                .bind(token.created_at.0)
                .bind(token.expires_at.0)
                .bind(token.used_at.map(|at| at.0))
                .bind(&token.used_by)
                .execute(&mut *tx)
                .await;
                match result {
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists(Unique::JoinToken)),
                    other => other?,
                };
                check_limit(&mut tx, "SELECT COUNT(*) FROM join_tokens", None, limit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_join_token(&self, token_id: &str, secret_sha256: &str, now: Timestamp) -> StoreResult<JoinClaim> {
                let mut tx = self.begin_write().await?;
                let row = sqlx::query("SELECT * FROM join_tokens WHERE token_id = $1 AND secret_sha256 = $2")
                    .bind(token_id)
                    .bind(secret_sha256)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else { return Ok(JoinClaim::Unknown) };
                let mut token = join_token_from_row(&row)?;
                if let Some(used_at) = token.used_at {
                    return Ok(JoinClaim::Used(used_at, token.used_by));
                }
                if token.expires_at <= now {
                    return Ok(JoinClaim::Expired(token.expires_at));
                }
                // Conditional, so that of two claims racing (PostgreSQL reads without locking) one wins.
                let claimed = sqlx::query("UPDATE join_tokens SET used_at = $1 WHERE token_id = $2 AND used_at IS NULL")
                    .bind(now.0)
                    .bind(token_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                if claimed.rows_affected() == 0 {
                    return Ok(JoinClaim::Used(now, None));
                }
                token.used_at = Some(now);
                Ok(JoinClaim::Claimed(token))
            }

            async fn settle_join_token(&self, token_id: &str, instance: Option<&str>) -> StoreResult<()> {
                let statement = match instance {
                    Some(_) => "UPDATE join_tokens SET used_by = $2 WHERE token_id = $1",
                    None => "UPDATE join_tokens SET used_at = NULL, used_by = $2 WHERE token_id = $1",
                };
                let mut tx = self.begin_write().await?;
                sqlx::query(statement).bind(token_id).bind(instance).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn join_tokens(&self) -> StoreResult<Vec<JoinTokenRecord>> {
                let rows = sqlx::query("SELECT * FROM join_tokens ORDER BY created_at DESC, token_id")
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter().map(join_token_from_row).collect()
            }
        }

        #[async_trait]
        impl Catalog for $store {
            async fn create_application(&self, app: &ApplicationInfo, limit: usize) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let result = sqlx::query("INSERT INTO applications (id, name, doc) VALUES ($1, $2, $3)")
                    .bind(&app.application_id)
                    .bind(&app.application_name)
                    .bind(to_doc(app))
                    .execute(&mut *tx)
                    .await;
                match result {
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists(Unique::Application)),
                    other => other?,
                };
                check_limit(&mut tx, "SELECT COUNT(*) FROM applications", None, limit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn application(&self, name: &str) -> StoreResult<Option<ApplicationInfo>> {
                let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM applications WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                doc.as_deref().map(from_doc).transpose()
            }

            async fn application_by_id(&self, id: &str) -> StoreResult<Option<ApplicationInfo>> {
                let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM applications WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                doc.as_deref().map(from_doc).transpose()
            }

            async fn list_applications(&self, page: &PageRequest) -> StoreResult<Page<String>> {
                let names: Vec<String> =
                    sqlx::query_scalar(limited("SELECT name FROM applications WHERE name > $1 ORDER BY name", page))
                        .bind(page.after.as_deref().unwrap_or(""))
                        .fetch_all(&mut *self.reader().await?)
                        .await?;
                Ok(page_of(names, page.limit, Clone::clone))
            }

            async fn rename_application(&self, id: &str, new_name: &str) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let doc: Option<String> =
                    sqlx::query_scalar("SELECT doc FROM applications WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
                let Some(doc) = doc else {
                    return Err(StoreError::NotFound);
                };
                let mut app: ApplicationInfo = from_doc(&doc)?;
                app.application_name = Some(new_name.to_owned());
                let result = sqlx::query("UPDATE applications SET name = $1, doc = $2 WHERE id = $3")
                    .bind(new_name)
                    .bind(to_doc(&app))
                    .bind(id)
                    .execute(&mut *tx)
                    .await;
                match result {
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists(Unique::Application)),
                    other => other?,
                };
                tx.commit().await?;
                Ok(())
            }

            async fn delete_application(&self, id: &str) -> StoreResult<()> {
                let group_ids = self.group_ids_of_application(id).await?;
                let mut tx = self.begin_write().await?;
                for group_id in &group_ids {
                    sqlx::query("DELETE FROM resource_tags WHERE kind = 'deploymentgroup' AND resource_id = $1")
                        .bind(group_id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("DELETE FROM resource_tags WHERE kind = 'application' AND resource_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                // Groups and revisions go with the application (ON DELETE CASCADE).
                sqlx::query("DELETE FROM applications WHERE id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_deployment_config(&self, config: &DeploymentConfigInfo, limit: usize) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let result = sqlx::query("INSERT INTO deployment_configs (name, doc) VALUES ($1, $2)")
                    .bind(&config.deployment_config_name)
                    .bind(to_doc(config))
                    .execute(&mut *tx)
                    .await;
                match result {
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists(Unique::DeploymentConfig)),
                    other => other?,
                };
                check_limit(&mut tx, "SELECT COUNT(*) FROM deployment_configs", None, limit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn deployment_config(&self, name: &str) -> StoreResult<Option<DeploymentConfigInfo>> {
                let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM deployment_configs WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                doc.as_deref().map(from_doc).transpose()
            }

            async fn list_deployment_configs(&self, page: &PageRequest) -> StoreResult<Page<String>> {
                let names: Vec<String> =
                    sqlx::query_scalar(limited("SELECT name FROM deployment_configs WHERE name > $1 ORDER BY name", page))
                        .bind(page.after.as_deref().unwrap_or(""))
                        .fetch_all(&mut *self.reader().await?)
                        .await?;
                Ok(page_of(names, page.limit, Clone::clone))
            }

            async fn delete_deployment_config(&self, name: &str) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let users: Vec<String> = sqlx::query_scalar(
                    "SELECT a.name || '/' || g.name FROM deployment_groups g JOIN applications a ON a.id = g.application_id
                     WHERE g.config_name = $1 ORDER BY 1",
                )
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
                let mut users = users;
                let running: Vec<String> = sqlx::query_scalar(concat!(
                    "SELECT id FROM deployments WHERE config_name = $1 AND status IN ",
                    active_statuses!(),
                    " ORDER BY seq"
                ))
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
                users.extend(running);
                if !users.is_empty() {
                    return Err(StoreError::InUse(users));
                }
                sqlx::query("DELETE FROM deployment_configs WHERE name = $1").bind(name).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM resource_tags WHERE kind = 'deploymentconfig' AND resource_id = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_deployment_group(&self, group: &GroupRecord, limit: usize) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let result = sqlx::query(
                    "INSERT INTO deployment_groups (id, application_id, name, config_name, ecs_service, doc) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(group.id())
                .bind(&group.application_id)
                .bind(&group.info.deployment_group_name)
                .bind(group.info.deployment_config_name.as_deref().unwrap_or_default())
                .bind(ecs_service_key(group))
                .bind(to_doc(&group.info))
                .execute(&mut *tx)
                .await;
                match result {
                    Err(e) if is_unique_violation(&e) => return Err(group_conflict(&e)),
                    other => other?,
                };
                let count = "SELECT COUNT(*) FROM deployment_groups WHERE application_id = $1";
                check_limit(&mut tx, count, Some(&group.application_id), limit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn deployment_group(&self, application_id: &str, name: &str) -> StoreResult<Option<GroupRecord>> {
                let row = sqlx::query("SELECT * FROM deployment_groups WHERE application_id = $1 AND name = $2")
                    .bind(application_id)
                    .bind(name)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                row.as_ref().map(group_from_row).transpose()
            }

            async fn deployment_group_by_id(&self, id: &str) -> StoreResult<Option<GroupRecord>> {
                let row = sqlx::query("SELECT * FROM deployment_groups WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                row.as_ref().map(group_from_row).transpose()
            }

            async fn application_and_group(
                &self,
                application_name: &str,
                group_name: &str,
            ) -> StoreResult<Option<(ApplicationInfo, Option<GroupRecord>)>> {
                let row = sqlx::query(
                    "SELECT a.doc AS app_doc, g.application_id, g.doc FROM applications a
                     LEFT JOIN deployment_groups g ON g.application_id = a.id AND g.name = $1
                     WHERE a.name = $2",
                )
                .bind(group_name)
                .bind(application_name)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let app = doc_column(&row, "app_doc")?;
                let group = match row.try_get::<Option<String>, _>("application_id")? {
                    Some(_) => Some(group_from_row(&row)?),
                    None => None,
                };
                Ok(Some((app, group)))
            }

            async fn list_deployment_groups(&self, application_id: &str, page: &PageRequest) -> StoreResult<Page<String>> {
                let names: Vec<String> = sqlx::query_scalar(limited(
                    "SELECT name FROM deployment_groups WHERE application_id = $1 AND name > $2 ORDER BY name",
                    page,
                ))
                .bind(application_id)
                .bind(page.after.as_deref().unwrap_or(""))
                .fetch_all(&mut *self.reader().await?)
                .await?;
                Ok(page_of(names, page.limit, Clone::clone))
            }

            async fn update_deployment_group(&self, group: &GroupRecord) -> StoreResult<()> {
                let result = sqlx::query(
                    "UPDATE deployment_groups SET name = $1, config_name = $2, ecs_service = $3, doc = $4 WHERE id = $5",
                )
                .bind(&group.info.deployment_group_name)
                .bind(group.info.deployment_config_name.as_deref().unwrap_or_default())
                .bind(ecs_service_key(group))
                .bind(to_doc(&group.info))
                .bind(group.id())
                .execute(&mut *self.writer().await?)
                .await;
                match result {
                    Err(e) if is_unique_violation(&e) => Err(group_conflict(&e)),
                    Ok(done) if done.rows_affected() == 0 => Err(StoreError::NotFound),
                    other => other.map(|_| ()).map_err(Into::into),
                }
            }

            async fn delete_deployment_group(&self, id: &str) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM resource_tags WHERE kind = 'deploymentgroup' AND resource_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM deployment_groups WHERE id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_target_revision(&self, group_id: &str, revision: &RevisionLocation, key: &str) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM deployment_groups WHERE id = $1")
                    .bind(group_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(doc) = doc else {
                    return Err(StoreError::NotFound);
                };
                let mut info: landfall_api::shapes::DeploymentGroupInfo = from_doc(&doc)?;
                info.target_revision = Some(revision.clone());
                sqlx::query("UPDATE deployment_groups SET target_revision_key = $1, doc = $2 WHERE id = $3")
                    .bind(key)
                    .bind(to_doc(&info))
                    .bind(group_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn register_revision(&self, revision: &RevisionRecord) -> StoreResult<()> {
                let mut connection = self.writer().await?;
                insert_revision(&mut connection, revision, true).await
            }

            async fn revision(&self, application_id: &str, key: &str) -> StoreResult<Option<RevisionRecord>> {
                let row = sqlx::query("SELECT * FROM revisions WHERE application_id = $1 AND revision_key = $2")
                    .bind(application_id)
                    .bind(key)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let mut record = revision_from_row(&row)?;
                let groups: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM deployment_groups WHERE application_id = $1 AND target_revision_key = $2 ORDER BY name",
                )
                .bind(application_id)
                .bind(key)
                .fetch_all(&mut *self.reader().await?)
                .await?;
                record.info.deployment_groups = Some(groups);
                Ok(Some(record))
            }

            async fn list_revisions(
                &self,
                application_id: &str,
                filter: &RevisionFilter,
                page: &PageRequest,
            ) -> StoreResult<Page<RevisionRecord>> {
                let offset: i64 = match &page.after {
                    Some(after) => after.parse().map_err(|_| StoreError::backend(format!("bad revision cursor {after}")))?,
                    None => 0,
                };
                let mut query: QueryBuilder<$db> =
                    QueryBuilder::new("SELECT r.* FROM revisions r WHERE r.application_id = ");
                query.push_bind(application_id);
                if let Some(bucket) = &filter.s3_bucket {
                    query.push(" AND r.s3_bucket = ").push_bind(bucket.clone());
                }
                if let Some(prefix) = &filter.s3_key_prefix {
                    query.push(" AND substr(r.s3_key, 1, length(").push_bind(prefix.clone());
                    query.push(")) = ").push_bind(prefix.clone());
                }
                let deployed = "EXISTS (SELECT 1 FROM deployment_groups g WHERE g.application_id = r.application_id
                                AND g.target_revision_key = r.revision_key)";
                match filter.deployed {
                    DeployedFilter::Include => {
                        query.push(format!(" AND {deployed}"));
                    }
                    DeployedFilter::Exclude => {
                        query.push(format!(" AND NOT {deployed}"));
                    }
                    DeployedFilter::Ignore => {}
                }
                let column = match filter.sort {
                    RevisionSort::RegisterTime => "r.register_time",
                    RevisionSort::FirstUsedTime => "r.first_used_time",
                    RevisionSort::LastUsedTime => "r.last_used_time",
                };
                let order = if filter.descending { "DESC" } else { "ASC" };
                query.push(format!(" ORDER BY {column} {order}, r.revision_key {order} LIMIT {}", fetch_limit(page)));
                query.push(" OFFSET ").push_bind(offset);
                let rows = query.build().fetch_all(&mut *self.reader().await?).await?;
                let items = rows.iter().map(revision_from_row).collect::<StoreResult<Vec<_>>>()?;
                let limit = page.limit;
                let mut page = page_of(items, limit, |_| String::new());
                if page.next.is_some() {
                    page.next = Some((offset + limit as i64).to_string());
                }
                Ok(page)
            }

            async fn resource_tags(&self, kind: TaggedKind, id: &str) -> StoreResult<Vec<Tag>> {
                let rows =
                    sqlx::query("SELECT key, value FROM resource_tags WHERE kind = $1 AND resource_id = $2 ORDER BY key")
                        .bind(kind_name(kind))
                        .bind(id)
                        .fetch_all(&mut *self.reader().await?)
                        .await?;
                rows.iter().map(|row| Ok(Tag { key: Some(row.try_get("key")?), value: Some(row.try_get("value")?) })).collect()
            }

            async fn tag_resource(&self, kind: TaggedKind, id: &str, tags: &[Tag]) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                for tag in tags {
                    sqlx::query(
                        "INSERT INTO resource_tags (kind, resource_id, key, value) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (kind, resource_id, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(kind_name(kind))
                    .bind(id)
                    .bind(tag.key.as_deref().unwrap_or_default())
                    .bind(tag.value.as_deref().unwrap_or_default())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn untag_resource(&self, kind: TaggedKind, id: &str, keys: &[String]) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                for key in keys {
                    sqlx::query("DELETE FROM resource_tags WHERE kind = $1 AND resource_id = $2 AND key = $3")
                        .bind(kind_name(kind))
                        .bind(id)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }

        #[async_trait]
        impl Hosts for $store {
            async fn register_instance(&self, instance: &InstanceInfo) -> StoreResult<()> {
                let name = instance.instance_name.as_deref().unwrap_or_default();
                let arn = instance_arn(instance);
                let mut tx = self.begin_write().await?;
                let registered: Option<i64> = sqlx::query_scalar("SELECT registered FROM instances WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
                if registered == Some(1) {
                    return Err(StoreError::AlreadyExists(Unique::Instance));
                }
                let arn_taken: Option<String> =
                    sqlx::query_scalar("SELECT name FROM instances WHERE iam_arn = $1 AND registered = 1 LIMIT 1")
                        .bind(&arn)
                        .fetch_optional(&mut *tx)
                        .await?;
                if arn_taken.is_some() {
                    let field = if instance.iam_user_arn.is_some() { Unique::IamUserArn } else { Unique::IamSessionArn };
                    return Err(StoreError::AlreadyExists(field));
                }
                sqlx::query(
                    "INSERT INTO instances (name, iam_arn, registered, doc) VALUES ($1, $2, 1, $3)
                     ON CONFLICT (name) DO UPDATE SET iam_arn = excluded.iam_arn, registered = 1, doc = excluded.doc",
                )
                .bind(name)
                .bind(&arn)
                .bind(to_doc(instance))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn instance(&self, name: &str) -> StoreResult<Option<InstanceInfo>> {
                let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM instances WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                doc.as_deref().map(from_doc).transpose()
            }

            async fn list_instances(&self) -> StoreResult<Vec<InstanceInfo>> {
                let docs: Vec<String> = sqlx::query_scalar("SELECT doc FROM instances ORDER BY name")
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                docs.iter().map(|doc| from_doc(doc)).collect()
            }

            async fn update_instance(&self, instance: &InstanceInfo) -> StoreResult<()> {
                let done = sqlx::query("UPDATE instances SET registered = $1, doc = $2 WHERE name = $3")
                    .bind(i64::from(instance.deregister_time.is_none()))
                    .bind(to_doc(instance))
                    .bind(&instance.instance_name)
                    .execute(&mut *self.writer().await?)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn record_agent_poll(
                &self,
                instance_name: &str,
                at: Timestamp,
                agent_version: Option<&str>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO agent_status (instance_name, last_seen, agent_version) VALUES ($1, $2, $3)
                     ON CONFLICT (instance_name) DO UPDATE SET last_seen = excluded.last_seen, agent_version = excluded.agent_version",
                )
                .bind(instance_name)
                .bind(at.millis())
                .bind(agent_version)
                .execute(&mut *self.writer().await?)
                .await?;
                Ok(())
            }

            async fn agent_statuses(&self) -> StoreResult<Vec<AgentStatusRecord>> {
                let rows =
                    sqlx::query("SELECT instance_name, last_seen, agent_version FROM agent_status ORDER BY instance_name")
                        .fetch_all(&mut *self.reader().await?)
                        .await?;
                rows.iter()
                    .map(|row| {
                        Ok(AgentStatusRecord {
                            instance_name: row.try_get("instance_name")?,
                            last_seen: Timestamp(row.try_get("last_seen")?),
                            agent_version: row.try_get("agent_version")?,
                        })
                    })
                    .collect()
            }

            async fn create_host_pool(&self, pool: &HostPoolInfo) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("INSERT INTO host_pools (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(&pool.pool_name)
                    .bind(pool.create_time.0)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::AlreadyExists(Unique::HostPool));
                }
                pools::insert_members(&mut tx, &pool.pool_name, &pool.instance_names).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn host_pool(&self, name: &str) -> StoreResult<Option<HostPoolInfo>> {
                Ok(pools::read(&mut *self.reader().await?, Some(name)).await?.pop())
            }

            async fn list_host_pools(&self) -> StoreResult<Vec<HostPoolInfo>> {
                pools::read(&mut *self.reader().await?, None).await
            }

            async fn add_host_pool_members(&self, pool: &str, instances: &[String]) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                pools::check_exists(&mut tx, pool).await?;
                pools::insert_members(&mut tx, pool, instances).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn remove_host_pool_members(&self, pool: &str, instances: &[String]) -> StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                pools::check_exists(&mut tx, pool).await?;
                let mut removed = 0;
                for instance in instances {
                    removed += sqlx::query("DELETE FROM host_pool_members WHERE pool_name = $1 AND instance_name = $2")
                        .bind(pool)
                        .bind(instance)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(removed)
            }

            async fn delete_host_pool(&self, name: &str) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM host_pool_members WHERE pool_name = $1").bind(name).execute(&mut *tx).await?;
                let done = sqlx::query("DELETE FROM host_pools WHERE name = $1").bind(name).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn leave_host_pools(&self, instance: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM host_pool_members WHERE instance_name = $1")
                    .bind(instance)
                    .execute(&mut *self.writer().await?)
                    .await?;
                Ok(())
            }

            async fn put_departure(&self, departure: &DepartureRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO departures (instance_name, drained, requested_at) VALUES ($1, $2, $3)
                     ON CONFLICT (instance_name) DO UPDATE
                     SET drained = CASE WHEN excluded.drained = 1 THEN 1 ELSE departures.drained END",
                )
                .bind(&departure.instance_name)
                .bind(i64::from(departure.drained))
                .bind(departure.requested_at.0)
                .execute(&mut *self.writer().await?)
                .await?;
                Ok(())
            }

            async fn departures(&self) -> StoreResult<Vec<DepartureRecord>> {
                let rows = sqlx::query("SELECT * FROM departures ORDER BY instance_name")
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(DepartureRecord {
                            instance_name: row.try_get("instance_name")?,
                            drained: row.try_get::<i64, _>("drained")? != 0,
                            requested_at: Timestamp(row.try_get("requested_at")?),
                        })
                    })
                    .collect()
            }

            async fn delete_departure(&self, instance: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM departures WHERE instance_name = $1")
                    .bind(instance)
                    .execute(&mut *self.writer().await?)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl Deployments for $store {
            async fn create_deployment(
                &self,
                deployment: &DeploymentRecord,
                targets: &[TargetRecord],
                revision: &RevisionRecord,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                insert_deployment(&mut tx, deployment, targets, revision).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn deployment(&self, id: &str) -> StoreResult<Option<DeploymentRecord>> {
                let row = sqlx::query("SELECT * FROM deployments WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                row.as_ref().map(deployment_from_row).transpose()
            }

            async fn deployments_of_target(&self, target_id: &str, limit: usize) -> StoreResult<Vec<DeploymentRecord>> {
                // Through the host's commands (indexed by target), newest deployment first.
                let rows = sqlx::query(limited(
                    "SELECT * FROM deployments WHERE id IN (SELECT deployment_id FROM host_commands WHERE target_id = $1)
                     ORDER BY seq DESC",
                    &PageRequest { after: None, limit: limit.saturating_sub(1) },
                ))
                .bind(target_id)
                .fetch_all(&mut *self.reader().await?)
                .await?;
                rows.iter().map(deployment_from_row).collect()
            }

            async fn list_deployments(&self, filter: &DeploymentFilter, page: &PageRequest) -> StoreResult<Page<String>> {
                let after: i64 = match &page.after {
                    Some(after) => after.parse().map_err(|_| StoreError::backend(format!("bad deployment cursor {after}")))?,
                    None => i64::MAX,
                };
                // One row holding the page as "seq id seq id ...": the SQLite driver hands rows over one
                // at a time, which for a 100-id page costs more than the query (and string aggregation
                // costs half what JSON aggregation does). string_agg is SQLite's group_concat too.
                let mut query: QueryBuilder<$db> = QueryBuilder::new(
                    "SELECT string_agg(seq || ' ' || id, ' ' ORDER BY seq DESC) FROM \
                     (SELECT seq, id FROM deployments WHERE seq < ",
                );
                query.push_bind(after);
                if let Some(group_id) = &filter.group_id {
                    query.push(" AND group_id = ").push_bind(group_id.clone());
                }
                if !filter.statuses.is_empty() {
                    query.push(" AND status IN (");
                    let mut separated = query.separated(", ");
                    for status in &filter.statuses {
                        separated.push_bind(status.clone());
                    }
                    query.push(")");
                }
                if let Some(from) = filter.created_from {
                    query.push(" AND create_time >= ").push_bind(from.0);
                }
                if let Some(to) = filter.created_to {
                    query.push(" AND create_time <= ").push_bind(to.0);
                }
                if let Some(external_id) = &filter.external_id {
                    query.push(" AND external_id = ").push_bind(external_id.clone());
                }
                // The limit is written in, not bound (see `limited`).
                query.push(format!(" ORDER BY seq DESC LIMIT {}) AS page", fetch_limit(page)));
                let listed: Option<String> = query.build_query_scalar().fetch_one(&mut *self.reader().await?).await?;
                let words: Vec<&str> = listed.as_deref().unwrap_or_default().split(' ').filter(|w| !w.is_empty()).collect();
                let items = words
                    .chunks(2)
                    .map(|pair| match pair {
                        [seq, id] => Ok((seq.parse::<i64>().map_err(|e| StoreError::Backend(e.into()))?, id.to_string())),
                        _ => Err(StoreError::backend(format!("malformed deployment page {listed:?}"))),
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                let page = page_of(items, page.limit, |(seq, _)| seq.to_string());
                Ok(Page { items: page.items.into_iter().map(|(_, id)| id).collect(), next: page.next })
            }

            async fn update_deployment(&self, deployment: &DeploymentRecord) -> StoreResult<()> {
                let mut connection = self.writer().await?;
                write_deployment(&mut connection, deployment).await
            }

            async fn active_deployments(&self) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(concat!(
                    "SELECT id FROM deployments WHERE status IN ",
                    active_statuses!(),
                    " ORDER BY seq"
                ))
                .fetch_all(&mut *self.reader().await?)
                .await?)
            }

            async fn apply_deployment_step(&self, step: &DeploymentStep) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                if let Some(fence) = &step.fence {
                    leases::check_fence(&mut tx, fence).await?;
                }
                write_deployment(&mut tx, &step.deployment).await?;
                // A fleet's worth of rows goes in a few statements, not one per row.
                for targets in step.targets.chunks(crate::sql::ROWS_PER_STATEMENT) {
                    let mut query =
                        QueryBuilder::<$db>::new("UPDATE deployment_targets SET doc = changed.column3 FROM (");
                    query.push_values(targets, |mut row, target| {
                        row.push_bind(&target.deployment_id).push_bind(&target.target_id).push_bind(to_doc(&target.target));
                    });
                    query.push(
                        ") AS changed WHERE deployment_targets.deployment_id = changed.column1
                         AND deployment_targets.target_id = changed.column2",
                    );
                    query.build().execute(&mut *tx).await?;
                }
                for commands in step.new_commands.chunks(crate::sql::ROWS_PER_STATEMENT) {
                    let mut query = QueryBuilder::<$db>::new(
                        "INSERT INTO host_commands
                         (id, deployment_id, target_id, lifecycle_event, state, created_at, dispatched_at, acknowledged_at) ",
                    );
                    query.push_values(commands, |mut row, command| {
                        row.push_bind(&command.id)
                            .push_bind(&command.deployment_id)
                            .push_bind(&command.target_id)
                            .push_bind(&command.lifecycle_event)
                            .push_bind(command.state.as_str())
                            .push_bind(command.created_at.0)
                            .push_bind(command.dispatched_at.map(|t| t.0))
                            .push_bind(command.acknowledged_at.map(|t| t.0));
                    });
                    query.build().execute(&mut *tx).await?;
                }
                for (id, state, diagnostics) in &step.command_updates {
                    // Back to Queued (a lost hand-out) clears the hand-out; a final state completes it.
                    sqlx::query(
                        "UPDATE host_commands SET state = $1, diagnostics = COALESCE($2, diagnostics),
                         completed_at = CASE WHEN $1 = 'Queued' THEN NULL ELSE COALESCE(completed_at, $3) END,
                         dispatched_at = CASE WHEN $1 = 'Queued' THEN NULL ELSE dispatched_at END
                         WHERE id = $4 AND state IN ('Queued', 'Dispatched')",
                    )
                    .bind(state.as_str())
                    .bind(diagnostics.as_ref().map(to_doc))
                    .bind(step.now.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                for entry in &step.history {
                    sqlx::query(
                        "INSERT INTO instance_history (group_id, instance_name, revision_key, healthy) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (group_id, instance_name) DO UPDATE SET
                         revision_key = excluded.revision_key, healthy = excluded.healthy",
                    )
                    .bind(&entry.group_id)
                    .bind(&entry.instance_name)
                    .bind(&entry.revision_key)
                    .bind(i64::from(entry.healthy))
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((revision, key)) = &step.target_revision {
                    let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM deployment_groups WHERE id = $1")
                        .bind(&step.deployment.group_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    // The group may have been deleted while the deployment ran.
                    if let Some(doc) = doc {
                        let mut info: landfall_api::shapes::DeploymentGroupInfo = from_doc(&doc)?;
                        info.target_revision = Some(revision.clone());
                        sqlx::query("UPDATE deployment_groups SET target_revision_key = $1, doc = $2 WHERE id = $3")
                            .bind(key)
                            .bind(to_doc(&info))
                            .bind(&step.deployment.group_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                if let Some((deployment, targets, revision)) = &step.follow_up {
                    insert_deployment(&mut tx, deployment, targets, revision).await?;
                }
                journal::insert_events(&mut tx, &step.events).await?;
                journal::insert_triggers(&mut tx, &step.triggers).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn commands_of(&self, deployment_id: &str) -> StoreResult<Vec<HostCommandRecord>> {
                self.commands_from(deployment_id, i64::MIN).await
            }

            async fn commands_from(&self, deployment_id: &str, seq: i64) -> StoreResult<Vec<HostCommandRecord>> {
                let rows = sqlx::query("SELECT * FROM host_commands WHERE deployment_id = $1 AND seq >= $2 ORDER BY seq")
                    .bind(deployment_id)
                    .bind(seq)
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter().map(command_from_row).collect()
            }

            async fn command(&self, id: &str) -> StoreResult<Option<HostCommandRecord>> {
                let row = sqlx::query("SELECT * FROM host_commands WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                row.as_ref().map(command_from_row).transpose()
            }

            async fn latest_command(&self, deployment_id: &str, target_id: &str, event: &str) -> StoreResult<Option<HostCommandRecord>> {
                let row = sqlx::query(
                    "SELECT * FROM host_commands WHERE deployment_id = $1 AND target_id = $2 AND lifecycle_event = $3
                     ORDER BY seq DESC LIMIT 1",
                )
                .bind(deployment_id)
                .bind(target_id)
                .bind(event)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
                row.as_ref().map(command_from_row).transpose()
            }

            async fn dispatch_command(&self, instance_name: &str, at: Timestamp) -> StoreResult<Option<HostCommandRecord>> {
                let write = CommandWrite::Dispatch { instance: instance_name.to_owned(), at: at.0 };
                match self.write_command(write).await? {
                    CommandWritten::Dispatched(command) => Ok(command),
                    _ => Err(StoreError::backend("a hand-out answered as another write")),
                }
            }

            async fn acknowledge_command(&self, id: &str, target_id: &str, at: Timestamp) -> StoreResult<Option<HostCommandRecord>> {
                let write = CommandWrite::Acknowledge { id: id.to_owned(), target_id: target_id.to_owned(), at: at.0 };
                match self.write_command(write).await? {
                    CommandWritten::Acknowledged(command) => Ok(command),
                    _ => Err(StoreError::backend("an acknowledgement answered as another write")),
                }
            }

            async fn complete_command(
                &self,
                id: &str,
                target_id: &str,
                succeeded: bool,
                diagnostics: &landfall_api::shapes::Diagnostics,
                at: Timestamp,
            ) -> StoreResult<Completion> {
                let write = CommandWrite::Complete {
                    id: id.to_owned(),
                    target_id: target_id.to_owned(),
                    succeeded,
                    diagnostics: to_doc(diagnostics),
                    at: at.0,
                };
                match self.write_command(write).await? {
                    CommandWritten::Completed(completion) => Ok(completion),
                    _ => Err(StoreError::backend("a completion answered as another write")),
                }
            }

            async fn append_command_log(&self, id: &str, sequence: u64, text: &str, limit: LogLimit) -> StoreResult<()> {
                if text.is_empty() {
                    return Ok(());
                }
                let bytes = text.len() as i64;
                let mut tx = self.begin_write().await?;
                let sizes: Option<(i64, i64, i64, i64)> = sqlx::query_as(
                    "SELECT received, kept, head, last_sequence FROM event_log_sizes WHERE command_id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                if sizes.is_some_and(|(.., last)| sequence as i64 <= last) {
                    return Ok(());
                }
                let (received, mut kept, mut head, _) = sizes.unwrap_or((0, 0, 0, 0));
                let in_head = (head as u64) < limit.head;
                let inserted = sqlx::query(
                    "INSERT INTO event_log_chunks (command_id, sequence, byte_offset, bytes, head, text)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(sequence as i64)
                .bind(received)
                .bind(bytes)
                .bind(i64::from(in_head))
                .bind(text)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Ok(());
                }
                kept += bytes;
                if in_head {
                    head += bytes;
                }
                // Over the limit: the oldest chunks after the head go, a few at a time.
                while kept as u64 > limit.total {
                    let oldest: Vec<(i64, i64)> = sqlx::query_as(
                        "SELECT byte_offset, bytes FROM event_log_chunks WHERE command_id = $1 AND head = 0
                         ORDER BY byte_offset LIMIT 32",
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut keep_from = None;
                    for (offset, size) in &oldest {
                        if kept as u64 <= limit.total {
                            keep_from = Some(*offset);
                            break;
                        }
                        kept -= size;
                    }
                    let Some((last_offset, _)) = oldest.last() else { break };
                    sqlx::query("DELETE FROM event_log_chunks WHERE command_id = $1 AND head = 0 AND byte_offset < $2")
                        .bind(id)
                        .bind(keep_from.unwrap_or(last_offset + 1))
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO event_log_sizes (command_id, received, kept, head, last_sequence) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (command_id) DO UPDATE SET received = excluded.received, kept = excluded.kept,
                     head = excluded.head, last_sequence = excluded.last_sequence",
                )
                .bind(id)
                .bind(received + bytes)
                .bind(kept)
                .bind(head)
                .bind(sequence as i64)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn command_log_page(&self, id: &str, start: LogStart, max_bytes: u64) -> StoreResult<LogPage> {
                let received: i64 = sqlx::query_scalar("SELECT received FROM event_log_sizes WHERE command_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?
                    .unwrap_or(0);
                let from = match start {
                    LogStart::Offset(offset) => offset,
                    LogStart::Tail(bytes) => (received as u64).saturating_sub(bytes),
                };
                // Chunks ending after `from`, while the bytes before each stay under the page size.
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT byte_offset, text FROM (
                         SELECT byte_offset, bytes, text,
                                SUM(bytes) OVER (ORDER BY byte_offset ROWS UNBOUNDED PRECEDING) AS running
                         FROM event_log_chunks WHERE command_id = $1 AND byte_offset + bytes > $2
                     ) AS page WHERE running - bytes < $3 ORDER BY byte_offset",
                )
                .bind(id)
                .bind(i64::try_from(from).unwrap_or(i64::MAX))
                .bind(i64::try_from(max_bytes.max(1)).unwrap_or(i64::MAX))
                .fetch_all(&mut *self.reader().await?)
                .await?;
                let chunks = rows.into_iter().map(|(offset, text)| LogChunkRecord { offset: offset as u64, text }).collect();
                Ok(LogPage { chunks, received: received as u64 })
            }

            async fn instance_history(&self, group_id: &str) -> StoreResult<Vec<InstanceHistoryRecord>> {
                let rows = sqlx::query("SELECT * FROM instance_history WHERE group_id = $1 ORDER BY instance_name")
                    .bind(group_id)
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(InstanceHistoryRecord {
                            group_id: row.try_get("group_id")?,
                            instance_name: row.try_get("instance_name")?,
                            revision_key: row.try_get("revision_key")?,
                            healthy: row.try_get::<i64, _>("healthy")? != 0,
                        })
                    })
                    .collect()
            }

            async fn last_deployments(&self, group_id: &str) -> StoreResult<(Option<DeploymentInfo>, Option<DeploymentInfo>)> {
                let attempted: Option<String> =
                    sqlx::query_scalar("SELECT doc FROM deployments WHERE group_id = $1 ORDER BY seq DESC LIMIT 1")
                        .bind(group_id)
                        .fetch_optional(&mut *self.reader().await?)
                        .await?;
                let succeeded: Option<String> = sqlx::query_scalar(
                    "SELECT doc FROM deployments WHERE group_id = $1 AND status = 'Succeeded' ORDER BY seq DESC LIMIT 1",
                )
                .bind(group_id)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
                Ok((attempted.as_deref().map(from_doc).transpose()?, succeeded.as_deref().map(from_doc).transpose()?))
            }

            async fn targets(&self, deployment_id: &str) -> StoreResult<Vec<TargetRecord>> {
                let rows =
                    sqlx::query("SELECT * FROM deployment_targets WHERE deployment_id = $1 ORDER BY position, target_id")
                        .bind(deployment_id)
                        .fetch_all(&mut *self.reader().await?)
                        .await?;
                rows.iter().map(target_record).collect()
            }

            async fn targets_after(
                &self,
                deployment_id: &str,
                after: Option<&str>,
                limit: usize,
            ) -> StoreResult<Vec<TargetRecord>> {
                let rows = sqlx::query(
                    "SELECT * FROM deployment_targets WHERE deployment_id = $1 AND target_id > $2
                     ORDER BY target_id LIMIT $3",
                )
                .bind(deployment_id)
                .bind(after.unwrap_or(""))
                .bind(limit as i64)
                .fetch_all(&mut *self.reader().await?)
                .await?;
                rows.iter().map(target_record).collect()
            }

            async fn targets_window(
                &self,
                deployment_id: &str,
                offset: usize,
                limit: usize,
            ) -> StoreResult<Vec<TargetRecord>> {
                // The offset is walked in the (deployment_id, position, target_id) index alone;
                // only the page's rows are read.
                let rows = sqlx::query(
                    "SELECT * FROM deployment_targets WHERE deployment_id = $1 AND (position, target_id) >= (
                         SELECT position, target_id FROM deployment_targets WHERE deployment_id = $1
                         ORDER BY position, target_id LIMIT 1 OFFSET $2)
                     ORDER BY position, target_id LIMIT $3",
                )
                .bind(deployment_id)
                .bind(offset as i64)
                .bind(limit as i64)
                .fetch_all(&mut *self.reader().await?)
                .await?;
                rows.iter().map(target_record).collect()
            }

            async fn targets_named(
                &self,
                deployment_id: &str,
                target_ids: &[String],
            ) -> StoreResult<Vec<TargetRecord>> {
                let mut rows = Vec::new();
                let mut reader = self.reader().await?;
                for ids in target_ids.chunks(crate::sql::ROWS_PER_STATEMENT) {
                    let mut query = QueryBuilder::<$db>::new("SELECT * FROM deployment_targets WHERE deployment_id = ");
                    query.push_bind(deployment_id).push(" AND target_id IN (");
                    let mut list = query.separated(", ");
                    for id in ids {
                        list.push_bind(id);
                    }
                    query.push(") ORDER BY target_id");
                    rows.extend(query.build().fetch_all(&mut *reader).await?);
                }
                let mut targets: Vec<TargetRecord> = rows.iter().map(target_record).collect::<StoreResult<_>>()?;
                targets.sort_by(|a, b| a.target_id.cmp(&b.target_id));
                Ok(targets)
            }

            async fn target_count(&self, deployment_id: &str) -> StoreResult<usize> {
                let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deployment_targets WHERE deployment_id = $1")
                    .bind(deployment_id)
                    .fetch_one(&mut *self.reader().await?)
                    .await?;
                Ok(count as usize)
            }

            async fn update_target(&self, target: &TargetRecord) -> StoreResult<()> {
                let done = sqlx::query("UPDATE deployment_targets SET doc = $1 WHERE deployment_id = $2 AND target_id = $3")
                    .bind(to_doc(&target.target))
                    .bind(&target.deployment_id)
                    .bind(&target.target_id)
                    .execute(&mut *self.writer().await?)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn deployment_status_counts(&self) -> StoreResult<Vec<(String, i64)>> {
                let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM deployments GROUP BY status ORDER BY status")
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter().map(|row| Ok((row.try_get("status")?, row.try_get("n")?))).collect()
            }

            async fn append_deployment_events(&self, events: &[DeploymentEventInfo]) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                journal::insert_events(&mut tx, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn deployment_events(
                &self,
                deployment_id: &str,
                after: i64,
                limit: usize,
            ) -> StoreResult<Vec<DeploymentEventInfo>> {
                journal::events_of(&mut *self.reader().await?, deployment_id, after, limit).await
            }

            async fn latest_deployment_events(
                &self,
                deployment_id: &str,
                limit: usize,
            ) -> StoreResult<Vec<DeploymentEventInfo>> {
                let rows = sqlx::query(
                    "SELECT seq, doc FROM deployment_events WHERE deployment_id = $1 ORDER BY seq DESC LIMIT $2",
                )
                .bind(deployment_id)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&mut *self.reader().await?)
                .await?;
                let mut events = rows.iter().map(journal::event_row).collect::<StoreResult<Vec<_>>>()?;
                events.reverse();
                Ok(events)
            }
        }

        #[async_trait]
        impl TargetGroups for $store {
            async fn create_target_group(&self, group: &TargetGroupInfo) -> StoreResult<()> {
                let doc = to_doc(group);
                let done =
                    sqlx::query("INSERT INTO target_groups (name, doc, revision) VALUES ($1, $2, 1) ON CONFLICT DO NOTHING")
                        .bind(&group.name)
                        .bind(doc)
                        .execute(&mut *self.writer().await?)
                        .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::AlreadyExists(Unique::TargetGroup));
                }
                Ok(())
            }

            async fn target_group(&self, name: &str) -> StoreResult<Option<TargetGroupRecord>> {
                let row = sqlx::query("SELECT doc, revision FROM target_groups WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                row.map(|row| target_group_record(&row)).transpose()
            }

            async fn list_target_groups(&self) -> StoreResult<Vec<TargetGroupRecord>> {
                let rows = sqlx::query("SELECT doc, revision FROM target_groups ORDER BY name")
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                rows.iter().map(target_group_record).collect()
            }

            async fn update_target_group(&self, record: &TargetGroupRecord) -> StoreResult<()> {
                let doc = to_doc(&record.info);
                let done =
                    sqlx::query("UPDATE target_groups SET doc = $1, revision = revision + 1 WHERE name = $2 AND revision = $3")
                        .bind(doc)
                        .bind(&record.info.name)
                        .bind(record.revision)
                        .execute(&mut *self.writer().await?)
                        .await?;
                if done.rows_affected() == 1 {
                    return Ok(());
                }
                match self.target_group(&record.info.name).await? {
                    Some(_) => Err(StoreError::Changed(format!("target group {}", record.info.name))),
                    None => Err(StoreError::NotFound),
                }
            }

            async fn delete_target_group(&self, name: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM target_groups WHERE name = $1")
                    .bind(name)
                    .execute(&mut *self.writer().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl Alarms for $store {
            async fn put_alarm(&self, alarm: &AlarmInfo) -> StoreResult<()> {
                journal::put_alarm(&mut *self.writer().await?, alarm).await
            }

            async fn alarm(&self, name: &str) -> StoreResult<Option<AlarmInfo>> {
                journal::alarm(&mut *self.reader().await?, name).await
            }

            async fn list_alarms(&self) -> StoreResult<Vec<AlarmInfo>> {
                journal::list_alarms(&mut *self.reader().await?).await
            }

            async fn delete_alarm(&self, name: &str) -> StoreResult<bool> {
                journal::delete_alarm(&mut *self.writer().await?, name).await
            }
        }

        #[async_trait]
        impl TriggerOutbox for $store {
            async fn due_trigger_messages(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<TriggerMessage>> {
                journal::due_triggers(&mut *self.reader().await?, now, limit).await
            }

            async fn update_trigger_message(&self, message: &TriggerMessage) -> StoreResult<()> {
                journal::update_trigger(&mut *self.writer().await?, message).await
            }

            async fn trigger_messages(&self, deployment_id: &str) -> StoreResult<Vec<TriggerMessage>> {
                journal::triggers_of(&mut *self.reader().await?, deployment_id).await
            }

            async fn prune_trigger_messages(&self, before: Timestamp) -> StoreResult<u64> {
                journal::prune_triggers(&mut *self.writer().await?, before).await
            }
        }

        #[async_trait]
        impl AuditLog for $store {
            async fn append_audit_record(&self, record: &AuditRecordInfo) -> StoreResult<()> {
                journal::append_audit(&mut *self.writer().await?, record).await
            }

            async fn audit_records(&self, filter: &AuditFilter, page: &PageRequest) -> StoreResult<Page<AuditRecordInfo>> {
                journal::audit_records(&mut *self.reader().await?, filter, page).await
            }
        }

        /// Which uniqueness rule a deployment group write broke.
        fn group_conflict(error: &sqlx::Error) -> StoreError {
            let text = error.to_string();
            if text.contains("ecs_service") {
                StoreError::AlreadyExists(Unique::EcsService)
            } else {
                StoreError::AlreadyExists(Unique::DeploymentGroup)
            }
        }

        fn target_group_record(row: &$row) -> StoreResult<TargetGroupRecord> {
            Ok(TargetGroupRecord { info: doc_column(row, "doc")?, revision: row.try_get("revision")? })
        }


        /// Leases: each a row naming its holder, its epoch (bumped when the holder changes) and
        /// when it expires. Each statement is atomic on its own, so none takes the write lock.
        mod leases {
            use super::*;

            pub(super) async fn acquire(
                connection: &mut $conn,
                name: &str,
                holder: &str,
                now: Timestamp,
                until: Timestamp,
            ) -> StoreResult<Option<Fence>> {
                let epoch: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO leases (name, holder, epoch, expires_at) VALUES ($1, $2, 1, $3)
                     ON CONFLICT (name) DO UPDATE SET
                         epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END,
                         holder = excluded.holder,
                         expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at < $4
                     RETURNING epoch",
                )
                .bind(name)
                .bind(holder)
                .bind(until.0)
                .bind(now.0)
                .fetch_optional(&mut *connection)
                .await?;
                Ok(epoch.map(|epoch| Fence { lease: name.to_owned(), holder: holder.to_owned(), epoch }))
            }

            pub(super) async fn renew(connection: &mut $conn, holder: &str, until: Timestamp) -> StoreResult<Vec<Fence>> {
                let rows = sqlx::query("UPDATE leases SET expires_at = $1 WHERE holder = $2 RETURNING name, epoch")
                    .bind(until.0)
                    .bind(holder)
                    .fetch_all(&mut *connection)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(Fence { lease: row.try_get("name")?, holder: holder.to_owned(), epoch: row.try_get("epoch")? })
                    })
                    .collect()
            }

            pub(super) async fn all(connection: &mut $conn) -> StoreResult<Vec<LeaseRecord>> {
                let rows = sqlx::query("SELECT * FROM leases ORDER BY name").fetch_all(&mut *connection).await?;
                rows.iter()
                    .map(|row| {
                        Ok(LeaseRecord {
                            name: row.try_get("name")?,
                            holder: row.try_get("holder")?,
                            epoch: row.try_get("epoch")?,
                            expires_at: Timestamp(row.try_get("expires_at")?),
                        })
                    })
                    .collect()
            }

            /// LeaseLost unless the fence's holder still has the lease at the fence's epoch
            /// (expired or not: nobody else took it).
            pub(super) async fn check_fence(connection: &mut $conn, fence: &Fence) -> StoreResult<()> {
                let held: Option<i64> =
                    sqlx::query_scalar("SELECT epoch FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3")
                        .bind(&fence.lease)
                        .bind(&fence.holder)
                        .bind(fence.epoch)
                        .fetch_optional(connection)
                        .await?;
                match held {
                    Some(_) => Ok(()),
                    None => Err(StoreError::LeaseLost(fence.lease.clone())),
                }
            }
        }

        /// Host pools and their members.
        mod pools {
            use super::*;

            pub(super) async fn check_exists(connection: &mut $conn, pool: &str) -> StoreResult<()> {
                let found: Option<String> = sqlx::query_scalar("SELECT name FROM host_pools WHERE name = $1")
                    .bind(pool)
                    .fetch_optional(&mut *connection)
                    .await?;
                found.map(|_| ()).ok_or(StoreError::NotFound)
            }

            pub(super) async fn insert_members(
                connection: &mut $conn,
                pool: &str,
                instances: &[String],
            ) -> StoreResult<()> {
                for instance in instances {
                    sqlx::query(
                        "INSERT INTO host_pool_members (pool_name, instance_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
                    .bind(pool)
                    .bind(instance)
                    .execute(&mut *connection)
                    .await?;
                }
                Ok(())
            }

            /// The pool named, or every pool, by name with members by name.
            pub(super) async fn read(connection: &mut $conn, name: Option<&str>) -> StoreResult<Vec<HostPoolInfo>> {
                let rows = sqlx::query(
                    "SELECT p.name, p.created_at, m.instance_name FROM host_pools p
                     LEFT JOIN host_pool_members m ON m.pool_name = p.name
                     WHERE $1 IS NULL OR p.name = $1
                     ORDER BY p.name, m.instance_name",
                )
                .bind(name)
                .fetch_all(&mut *connection)
                .await?;
                let mut pools: Vec<HostPoolInfo> = Vec::new();
                for row in &rows {
                    let name: String = row.try_get("name")?;
                    if pools.last().is_none_or(|last| last.pool_name != name) {
                        pools.push(HostPoolInfo {
                            pool_name: name,
                            create_time: Timestamp(row.try_get("created_at")?),
                            ..Default::default()
                        });
                    }
                    let member: Option<String> = row.try_get("instance_name")?;
                    if let (Some(member), Some(last)) = (member, pools.last_mut()) {
                        last.instance_names.push(member);
                    }
                }
                Ok(pools)
            }
        }

        /// Timelines, the trigger outbox, the audit log and alarms.
        mod journal {
            use super::*;

            pub(super) async fn insert_events(
                connection: &mut $conn,
                events: &[DeploymentEventInfo],
            ) -> StoreResult<()> {
                // In order: their sequence numbers follow the order of the rows.
                for events in events.chunks(crate::sql::ROWS_PER_STATEMENT) {
                    let mut query = QueryBuilder::<$db>::new("INSERT INTO deployment_events (deployment_id, doc) ");
                    query.push_values(events, |mut row, event| {
                        row.push_bind(&event.deployment_id).push_bind(to_doc(event));
                    });
                    query.build().execute(&mut *connection).await?;
                }
                Ok(())
            }

            pub(super) async fn events_of(
                connection: &mut $conn,
                deployment_id: &str,
                after: i64,
                limit: usize,
            ) -> StoreResult<Vec<DeploymentEventInfo>> {
                let rows = sqlx::query(
                    "SELECT seq, doc FROM deployment_events WHERE deployment_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(deployment_id)
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&mut *connection)
                .await?;
                rows.iter().map(event_row).collect()
            }

            pub(super) fn event_row(row: &$row) -> StoreResult<DeploymentEventInfo> {
                let mut event: DeploymentEventInfo = from_doc(row.try_get("doc")?)?;
                event.sequence = row.try_get("seq")?;
                Ok(event)
            }

            pub(super) async fn insert_triggers(connection: &mut $conn, messages: &[TriggerMessage]) -> StoreResult<()> {
                for message in messages {
                    sqlx::query(
                        "INSERT INTO trigger_outbox (message_id, deployment_id, destination, trigger_name, event, subject, body,
                             created_at, attempts, next_attempt_at, state, last_error)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(&message.message_id)
                    .bind(&message.deployment_id)
                    .bind(&message.destination)
                    .bind(&message.trigger_name)
                    .bind(&message.event)
                    .bind(&message.subject)
                    .bind(&message.body)
                    .bind(message.created_at.millis())
                    .bind(message.attempts)
                    .bind(message.next_attempt_at.millis())
                    .bind(message.state.as_str())
                    .bind(&message.last_error)
                    .execute(&mut *connection)
                    .await?;
                }
                Ok(())
            }

            fn trigger_from_row(row: &$row) -> StoreResult<TriggerMessage> {
                let state: String = row.try_get("state")?;
                Ok(TriggerMessage {
                    sequence: row.try_get("seq")?,
                    message_id: row.try_get("message_id")?,
                    deployment_id: row.try_get("deployment_id")?,
                    destination: row.try_get("destination")?,
                    trigger_name: row.try_get("trigger_name")?,
                    event: row.try_get("event")?,
                    subject: row.try_get("subject")?,
                    body: row.try_get("body")?,
                    created_at: Timestamp(row.try_get("created_at")?),
                    attempts: row.try_get("attempts")?,
                    next_attempt_at: Timestamp(row.try_get("next_attempt_at")?),
                    state: TriggerState::parse(&state).unwrap_or(TriggerState::Pending),
                    last_error: row.try_get("last_error")?,
                })
            }

            pub(super) async fn due_triggers(connection: &mut $conn, now: Timestamp, limit: usize) -> StoreResult<Vec<TriggerMessage>> {
                // The head of each (deployment, destination) queue, if its attempt is due.
                let rows = sqlx::query(
                    "SELECT o.* FROM trigger_outbox o
                     WHERE o.state = 'Pending' AND o.next_attempt_at <= $1
                       AND NOT EXISTS (SELECT 1 FROM trigger_outbox e
                                       WHERE e.state = 'Pending' AND e.deployment_id = o.deployment_id
                                         AND e.destination = o.destination AND e.seq < o.seq)
                     ORDER BY o.seq LIMIT $2",
                )
                .bind(now.millis())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&mut *connection)
                .await?;
                rows.iter().map(trigger_from_row).collect()
            }

            pub(super) async fn update_trigger(connection: &mut $conn, message: &TriggerMessage) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE trigger_outbox SET state = $1, attempts = $2, next_attempt_at = $3, last_error = $4 WHERE seq = $5",
                )
                .bind(message.state.as_str())
                .bind(message.attempts)
                .bind(message.next_attempt_at.millis())
                .bind(&message.last_error)
                .bind(message.sequence)
                .execute(&mut *connection)
                .await?;
                Ok(())
            }

            pub(super) async fn triggers_of(connection: &mut $conn, deployment_id: &str) -> StoreResult<Vec<TriggerMessage>> {
                let rows = sqlx::query("SELECT * FROM trigger_outbox WHERE deployment_id = $1 ORDER BY seq")
                    .bind(deployment_id)
                    .fetch_all(&mut *connection)
                    .await?;
                rows.iter().map(trigger_from_row).collect()
            }

            pub(super) async fn prune_triggers(connection: &mut $conn, before: Timestamp) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM trigger_outbox WHERE state IN ('Delivered', 'Expired') AND created_at < $1")
                    .bind(before.millis())
                    .execute(&mut *connection)
                    .await?;
                Ok(done.rows_affected())
            }

            pub(super) async fn append_audit(connection: &mut $conn, record: &AuditRecordInfo) -> StoreResult<()> {
                sqlx::query("INSERT INTO audit_log (at, access_key_id, operation, doc) VALUES ($1, $2, $3, $4)")
                    .bind(record.time.millis())
                    .bind(&record.access_key_id)
                    .bind(&record.operation)
                    .bind(to_doc(record))
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            }

            pub(super) async fn audit_records(
                connection: &mut $conn,
                filter: &AuditFilter,
                page: &PageRequest,
            ) -> StoreResult<Page<AuditRecordInfo>> {
                let after: i64 = page.after.as_deref().and_then(|cursor| cursor.parse().ok()).unwrap_or(0);
                let mut query = QueryBuilder::<$db>::new("SELECT seq, doc FROM audit_log WHERE seq > ");
                query.push_bind(after);
                if let Some(from) = filter.from {
                    query.push(" AND at >= ").push_bind(from.millis());
                }
                if let Some(to) = filter.to {
                    query.push(" AND at <= ").push_bind(to.millis());
                }
                if let Some(key) = &filter.access_key_id {
                    query.push(" AND access_key_id = ").push_bind(key.clone());
                }
                if let Some(operation) = &filter.operation {
                    query.push(" AND operation = ").push_bind(operation.clone());
                }
                query.push(" ORDER BY seq LIMIT ").push_bind(super::fetch_limit(page));
                let rows = query.build().fetch_all(&mut *connection).await?;
                let records = rows
                    .iter()
                    .map(|row| {
                        let mut record: AuditRecordInfo = from_doc(row.try_get("doc")?)?;
                        record.sequence = row.try_get("seq")?;
                        Ok(record)
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(page_of(records, page.limit, |record| record.sequence.to_string()))
            }

            pub(super) async fn put_alarm(connection: &mut $conn, alarm: &AlarmInfo) -> StoreResult<()> {
                sqlx::query("INSERT INTO alarms (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc")
                    .bind(&alarm.alarm_name)
                    .bind(to_doc(alarm))
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            }

            pub(super) async fn alarm(connection: &mut $conn, name: &str) -> StoreResult<Option<AlarmInfo>> {
                let doc: Option<String> =
                    sqlx::query_scalar("SELECT doc FROM alarms WHERE name = $1").bind(name).fetch_optional(&mut *connection).await?;
                doc.as_deref().map(from_doc).transpose()
            }

            pub(super) async fn list_alarms(connection: &mut $conn) -> StoreResult<Vec<AlarmInfo>> {
                let docs: Vec<String> = sqlx::query_scalar("SELECT doc FROM alarms ORDER BY name").fetch_all(&mut *connection).await?;
                docs.iter().map(|doc| from_doc(doc)).collect()
            }

            pub(super) async fn delete_alarm(connection: &mut $conn, name: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM alarms WHERE name = $1").bind(name).execute(&mut *connection).await?;
                Ok(done.rows_affected() > 0)
            }

        }
    };
}
