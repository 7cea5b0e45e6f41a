//! Schema migrations: an ordered list, each applied once inside a transaction and recorded in
//! `schema_migrations`. A version is never edited after it ships; changes are new versions.
//! (sqlx's own migrator needs its proc-macros to embed files; a list of strings does the same
//! job without them.)
//!
//! Rolling upgrades: each schema also says the oldest schema version whose Landfall still works
//! on it (`compatible_from`), recorded with the migration in `meta`. A server finding a schema
//! newer than it knows starts anyway if its own newest version is at least that, so replicas
//! of the previous release keep running (and restarting) while the next one rolls out. A
//! migration that only adds (tables, indexes, columns with defaults) keeps the floor; one that
//! changes or removes what an older release reads must raise it (the test below holds every
//! migration above the floor to additions).

/// A backend's migrations and the oldest schema version whose Landfall works on the newest.
pub struct Schema {
    pub migrations: &'static [(i64, &'static str)],
    pub compatible_from: i64,
}

impl Schema {
    pub fn newest(&self) -> i64 {
        self.migrations.last().map_or(0, |(version, _)| *version)
    }
}

/// SQLite: versions 9 (leases), 10 (host pools, departures), 11 (bounded hook logs), 12
/// (ended console sessions), 13 (targets in their order) and 14 (revoked keys) only add tables
/// and indexes.
pub const SQLITE: Schema = Schema { migrations: SQLITE_MIGRATIONS, compatible_from: 8 };
/// PostgreSQL: versions 2 (leases), 3 (host pools, departures), 4 (bounded hook logs), 5
/// (ended console sessions), 6 (targets in their order) and 7 (revoked keys) only add tables and
/// indexes.
pub const POSTGRES: Schema = Schema { migrations: POSTGRES_MIGRATIONS, compatible_from: 1 };

/// The `meta` key recording which schema versions' Landfall work on schema `version`.
pub fn compatible_from_key(version: i64) -> String {
    format!("schema_compatible_from:{version}")
}

/// (version, statements) for SQLite.
pub const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE access_keys (
    access_key_id     TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    role              TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    revoked_at        INTEGER
);

CREATE TABLE applications (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc  TEXT NOT NULL
);

CREATE TABLE deployment_configs (
    name TEXT PRIMARY KEY,
    doc  TEXT NOT NULL
);

CREATE TABLE deployment_groups (
    id                  TEXT PRIMARY KEY,
    application_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    config_name         TEXT NOT NULL,
    ecs_service         TEXT UNIQUE,
    target_revision_key TEXT,
    doc                 TEXT NOT NULL,
    UNIQUE (application_id, name)
);
CREATE INDEX deployment_groups_config ON deployment_groups(config_name);

CREATE TABLE revisions (
    application_id  TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    revision_key    TEXT NOT NULL,
    s3_bucket       TEXT,
    s3_key          TEXT,
    register_time   INTEGER NOT NULL,
    first_used_time INTEGER,
    last_used_time  INTEGER,
    location        TEXT NOT NULL,
    description     TEXT,
    PRIMARY KEY (application_id, revision_key)
);

CREATE TABLE instances (
    name            TEXT PRIMARY KEY,
    iam_arn         TEXT NOT NULL,
    registered      INTEGER NOT NULL,
    doc             TEXT NOT NULL
);
CREATE INDEX instances_iam_arn ON instances(iam_arn);

CREATE TABLE resource_tags (
    kind        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (kind, resource_id, key)
);

CREATE TABLE deployments (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    application_id TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    status         TEXT NOT NULL,
    exclusive      INTEGER NOT NULL,
    create_time    INTEGER NOT NULL,
    external_id    TEXT,
    doc            TEXT NOT NULL
);
CREATE INDEX deployments_group ON deployments(group_id, seq);
CREATE INDEX deployments_status ON deployments(status, seq);

CREATE TABLE deployment_targets (
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    target_id     TEXT NOT NULL,
    doc           TEXT NOT NULL,
    PRIMARY KEY (deployment_id, target_id)
);
"#,
    ),
    (
        2,
        r#"
ALTER TABLE deployments ADD COLUMN config_name TEXT NOT NULL DEFAULT '';
UPDATE deployments SET config_name = COALESCE(json_extract(doc, '$.deploymentConfigName'), '');
CREATE INDEX deployments_config ON deployments(config_name, status);
"#,
    ),
    (
        3,
        r#"
-- Covering: a group's deployment listing reads the index alone.
DROP INDEX deployments_group;
CREATE INDEX deployments_group ON deployments(group_id, seq, id);
"#,
    ),
    (
        4,
        r#"
ALTER TABLE access_keys ADD COLUMN instance_name TEXT;
CREATE INDEX access_keys_instance ON access_keys(instance_name);
"#,
    ),
    (
        5,
        r#"
ALTER TABLE deployments ADD COLUMN progress TEXT;
ALTER TABLE deployments ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE host_commands (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    deployment_id   TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    lifecycle_event TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    dispatched_at   INTEGER,
    acknowledged_at INTEGER,
    completed_at    INTEGER,
    diagnostics     TEXT
);
CREATE INDEX host_commands_queue ON host_commands(target_id, state, seq);
CREATE INDEX host_commands_deployment ON host_commands(deployment_id, seq);

CREATE TABLE command_logs (
    command_id TEXT NOT NULL,
    sequence   INTEGER NOT NULL,
    text       TEXT NOT NULL,
    PRIMARY KEY (command_id, sequence)
);

CREATE TABLE instance_history (
    group_id      TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    revision_key  TEXT,
    healthy       INTEGER NOT NULL,
    PRIMARY KEY (group_id, instance_name)
);

ALTER TABLE deployment_targets ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        6,
        r#"
-- When each instance's agent last polled, and the version it reported.
CREATE TABLE agent_status (
    instance_name TEXT PRIMARY KEY,
    last_seen     INTEGER NOT NULL,
    agent_version TEXT
);
"#,
    ),
    (
        7,
        r#"
-- Target groups: the desired state the server keeps and the health their routers report, as
-- one document; `revision` guards read-modify-write updates.
CREATE TABLE target_groups (
    name     TEXT PRIMARY KEY,
    doc      TEXT NOT NULL,
    revision INTEGER NOT NULL
);
"#,
    ),
    (
        8,
        r#"
-- Alarms a deployment group can name: a PromQL expression, a comparison and a threshold.
CREATE TABLE alarms (
    name TEXT PRIMARY KEY,
    doc  TEXT NOT NULL
);

-- Every deployment's timeline.
CREATE TABLE deployment_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id TEXT NOT NULL,
    doc           TEXT NOT NULL
);
CREATE INDEX deployment_events_of ON deployment_events(deployment_id, seq);

-- Trigger notifications, written with the change they report, delivered from here.
CREATE TABLE trigger_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      TEXT NOT NULL UNIQUE,
    deployment_id   TEXT NOT NULL,
    destination     TEXT NOT NULL,
    trigger_name    TEXT NOT NULL,
    event           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    state           TEXT NOT NULL,
    last_error      TEXT
);
CREATE INDEX trigger_outbox_pending ON trigger_outbox(state, deployment_id, destination, seq);

-- The audit log: appended to, never changed.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    access_key_id TEXT NOT NULL,
    operation     TEXT NOT NULL,
    doc           TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    ),
    (
        9,
        r#"
-- Work one server does at a time; the epoch changes whenever the holder does (fencing).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
"#,
    ),
    (
        10,
        r#"
-- Host pools: named sets of hosts that deployment groups select through autoScalingGroups.
CREATE TABLE host_pools (
    name       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE host_pool_members (
    pool_name     TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    PRIMARY KEY (pool_name, instance_name)
);
CREATE INDEX host_pool_members_instance ON host_pool_members(instance_name);

-- Hosts leaving their deployment groups, deregistered once their termination deployments are
-- over (drained: 1 for landfall instance drain, 0 for a deregistration).
CREATE TABLE departures (
    instance_name TEXT PRIMARY KEY,
    drained       INTEGER NOT NULL,
    requested_at  INTEGER NOT NULL
);
"#,
    ),
    (
        11,
        r#"
-- Hook output, kept within a limit per lifecycle event: the first chunks (head = 1) and the
-- newest ones, each with its byte offset in everything the agent sent for the event, so readers
-- page by offset and see where output was left out. (command_logs, which kept everything, is
-- left to the releases before this one.)
CREATE TABLE event_log_chunks (
    command_id  TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    head        INTEGER NOT NULL,
    text        TEXT NOT NULL,
    PRIMARY KEY (command_id, sequence)
);
CREATE INDEX event_log_chunks_offset ON event_log_chunks(command_id, byte_offset);
CREATE INDEX event_log_chunks_trim ON event_log_chunks(command_id, head, byte_offset);
CREATE TABLE event_log_sizes (
    command_id TEXT PRIMARY KEY,
    received   INTEGER NOT NULL,
    kept       INTEGER NOT NULL,
    head       INTEGER NOT NULL,
    -- Chunks come in sequence: one at or below this is a retry of one kept or dropped.
    last_sequence INTEGER NOT NULL
);
INSERT INTO event_log_chunks (command_id, sequence, byte_offset, bytes, head, text)
SELECT command_id, sequence,
       COALESCE(SUM(length(CAST(text AS BLOB))) OVER (
           PARTITION BY command_id ORDER BY sequence ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0),
       length(CAST(text AS BLOB)), 1, text
FROM command_logs;
INSERT INTO event_log_sizes (command_id, received, kept, head, last_sequence)
SELECT command_id, SUM(bytes), SUM(bytes), SUM(bytes), MAX(sequence) FROM event_log_chunks GROUP BY command_id;
"#,
    ),
    (
        12,
        r#"
-- Console sessions signed out of before they expire: any server refuses their cookie.
CREATE TABLE ended_sessions (
    nonce      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
"#,
    ),
    (
        13,
        r#"
-- A page of a deployment's targets in their order, without reading the others.
CREATE INDEX deployment_targets_order ON deployment_targets(deployment_id, position, target_id);
"#,
    ),
    (
        14,
        r#"
-- The keys revoked since a moment, which every server looks for every few seconds.
CREATE INDEX access_keys_revoked ON access_keys(revoked_at);
"#,
    ),
    (
        15,
        r#"
-- Single-use tokens a host registers itself with (the install script); only their secrets' hashes.
CREATE TABLE join_tokens (
    token_id      TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    tags          TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    used_by       TEXT
);
"#,
    ),
    (
        16,
        r#"
-- Hosts asked to replace their agent (landfall agent-update), one request per host.
CREATE TABLE agent_updates (
    instance_name   TEXT PRIMARY KEY,
    rollout_id      TEXT NOT NULL,
    version         TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    max_unavailable INTEGER NOT NULL,
    requested_at    INTEGER NOT NULL,
    offered_at      INTEGER,
    finished_at     INTEGER,
    outcome         TEXT
);
"#,
    ),
];

/// (version, statements) for PostgreSQL: version 1 is the SQLite schema as of its version 8, in
/// one step; later versions follow SQLite's one by one (2 is SQLite's 9, 3 its 10, 4 its 11, 5 its 12, 6 its 13, 7 its 14). Integers are BIGINT (the store reads every number as i64); sequences are identities.
pub const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE access_keys (
    access_key_id     TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    role              TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    revoked_at        BIGINT,
    instance_name     TEXT
);
CREATE INDEX access_keys_instance ON access_keys(instance_name);

CREATE TABLE applications (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);

CREATE TABLE deployment_configs (name TEXT PRIMARY KEY, doc TEXT NOT NULL);

CREATE TABLE deployment_groups (
    id                  TEXT PRIMARY KEY,
    application_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    config_name         TEXT NOT NULL,
    ecs_service         TEXT UNIQUE,
    target_revision_key TEXT,
    doc                 TEXT NOT NULL,
    UNIQUE (application_id, name)
);
CREATE INDEX deployment_groups_config ON deployment_groups(config_name);

CREATE TABLE revisions (
    application_id  TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    revision_key    TEXT NOT NULL,
    s3_bucket       TEXT,
    s3_key          TEXT,
    register_time   BIGINT NOT NULL,
    first_used_time BIGINT,
    last_used_time  BIGINT,
    location        TEXT NOT NULL,
    description     TEXT,
    PRIMARY KEY (application_id, revision_key)
);

CREATE TABLE instances (name TEXT PRIMARY KEY, iam_arn TEXT NOT NULL, registered BIGINT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX instances_iam_arn ON instances(iam_arn);

CREATE TABLE resource_tags (
    kind        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (kind, resource_id, key)
);

CREATE TABLE deployments (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    application_id TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    status         TEXT NOT NULL,
    exclusive      BIGINT NOT NULL,
    create_time    BIGINT NOT NULL,
    external_id    TEXT,
    doc            TEXT NOT NULL,
    config_name    TEXT NOT NULL DEFAULT '',
    progress       TEXT,
    version        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX deployments_group ON deployments(group_id, seq, id);
CREATE INDEX deployments_status ON deployments(status, seq);
CREATE INDEX deployments_config ON deployments(config_name, status);

CREATE TABLE deployment_targets (
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    target_id     TEXT NOT NULL,
    doc           TEXT NOT NULL,
    position      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (deployment_id, target_id)
);

CREATE TABLE host_commands (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    deployment_id   TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    lifecycle_event TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    dispatched_at   BIGINT,
    acknowledged_at BIGINT,
    completed_at    BIGINT,
    diagnostics     TEXT
);
CREATE INDEX host_commands_queue ON host_commands(target_id, state, seq);
CREATE INDEX host_commands_deployment ON host_commands(deployment_id, seq);

CREATE TABLE command_logs (
    command_id TEXT NOT NULL,
    sequence   BIGINT NOT NULL,
    text       TEXT NOT NULL,
    PRIMARY KEY (command_id, sequence)
);

CREATE TABLE instance_history (
    group_id      TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    revision_key  TEXT,
    healthy       BIGINT NOT NULL,
    PRIMARY KEY (group_id, instance_name)
);

CREATE TABLE agent_status (instance_name TEXT PRIMARY KEY, last_seen BIGINT NOT NULL, agent_version TEXT);

CREATE TABLE target_groups (name TEXT PRIMARY KEY, doc TEXT NOT NULL, revision BIGINT NOT NULL);

CREATE TABLE alarms (name TEXT PRIMARY KEY, doc TEXT NOT NULL);

CREATE TABLE deployment_events (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    doc           TEXT NOT NULL
);
CREATE INDEX deployment_events_of ON deployment_events(deployment_id, seq);

CREATE TABLE trigger_outbox (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    deployment_id   TEXT NOT NULL,
    destination     TEXT NOT NULL,
    trigger_name    TEXT NOT NULL,
    event           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    state           TEXT NOT NULL,
    last_error      TEXT
);
CREATE INDEX trigger_outbox_pending ON trigger_outbox(state, deployment_id, destination, seq);

CREATE TABLE audit_log (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            BIGINT NOT NULL,
    access_key_id TEXT NOT NULL,
    operation     TEXT NOT NULL,
    doc           TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
"#,
    ),
    (
        2,
        r#"
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE host_pools (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
CREATE TABLE host_pool_members (
    pool_name     TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    PRIMARY KEY (pool_name, instance_name)
);
CREATE INDEX host_pool_members_instance ON host_pool_members(instance_name);
CREATE TABLE departures (instance_name TEXT PRIMARY KEY, drained BIGINT NOT NULL, requested_at BIGINT NOT NULL);
"#,
    ),
    (
        4,
        r#"
CREATE TABLE event_log_chunks (
    command_id  TEXT NOT NULL,
    sequence    BIGINT NOT NULL,
    byte_offset BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    head        BIGINT NOT NULL,
    text        TEXT NOT NULL,
    PRIMARY KEY (command_id, sequence)
);
CREATE INDEX event_log_chunks_offset ON event_log_chunks(command_id, byte_offset);
CREATE INDEX event_log_chunks_trim ON event_log_chunks(command_id, head, byte_offset);
CREATE TABLE event_log_sizes (
    command_id TEXT PRIMARY KEY,
    received   BIGINT NOT NULL,
    kept       BIGINT NOT NULL,
    head       BIGINT NOT NULL,
    last_sequence BIGINT NOT NULL
);
INSERT INTO event_log_chunks (command_id, sequence, byte_offset, bytes, head, text)
SELECT command_id, sequence,
       COALESCE(SUM(octet_length(text)) OVER (
           PARTITION BY command_id ORDER BY sequence ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0),
       octet_length(text), 1, text
FROM command_logs;
INSERT INTO event_log_sizes (command_id, received, kept, head, last_sequence)
SELECT command_id, SUM(bytes), SUM(bytes), SUM(bytes), MAX(sequence) FROM event_log_chunks GROUP BY command_id;
"#,
    ),
    (
        5,
        r#"
CREATE TABLE ended_sessions (nonce TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
"#,
    ),
    (
        6,
        r#"
CREATE INDEX deployment_targets_order ON deployment_targets(deployment_id, position, target_id);
"#,
    ),
    (
        7,
        r#"
CREATE INDEX access_keys_revoked ON access_keys(revoked_at);
"#,
    ),
    (
        8,
        r#"
CREATE TABLE join_tokens (
    token_id      TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    tags          TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    used_by       TEXT
);
"#,
    ),
    (
        9,
        r#"
CREATE TABLE agent_updates (
    instance_name   TEXT PRIMARY KEY,
    rollout_id      TEXT NOT NULL,
    version         TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    max_unavailable BIGINT NOT NULL,
    requested_at    BIGINT NOT NULL,
    offered_at      BIGINT,
    finished_at     BIGINT,
    outcome         TEXT
);
"#,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// What an older release may be reading: none of it goes in a migration above the floor.
    const CHANGES_WHAT_EXISTS: [&str; 6] =
        ["DROP ", "RENAME", "ALTER COLUMN", "SET NOT NULL", "DELETE FROM", "UPDATE "];

    #[test]
    fn migrations_above_the_compatibility_floor_only_add() {
        for schema in [&SQLITE, &POSTGRES] {
            assert!(schema.compatible_from <= schema.newest());
            for (version, statements) in schema.migrations.iter().filter(|(v, _)| *v > schema.compatible_from) {
                let upper = statements.to_ascii_uppercase();
                for change in CHANGES_WHAT_EXISTS {
                    assert!(
                        !upper.contains(change),
                        "migration {version} contains {change:?}: raise compatible_from to {version} (older releases cannot run on it)"
                    );
                }
            }
        }
    }

    #[test]
    fn versions_increase() {
        for schema in [&SQLITE, &POSTGRES] {
            assert!(schema.migrations.windows(2).all(|pair| pair[0].0 < pair[1].0));
        }
    }
}
