"""Versioned schema migrations for the SQLite backend. Append new versions; never edit old ones."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE logs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            origin TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT 0,
            root BLOB NOT NULL,
            created TEXT NOT NULL
        );
        -- Entries in bundles of up to 256 (zstd), as C2SP tlog-tiles entry bundles:
        -- one row per bundle keeps the ack path to a handful of appends per commit.
        CREATE TABLE bundles (
            id INTEGER PRIMARY KEY,
            log_id INTEGER NOT NULL,
            first_seq INTEGER NOT NULL,
            count INTEGER NOT NULL,
            entries BLOB NOT NULL,
            digests BLOB NOT NULL,
            UNIQUE (log_id, first_seq)
        );
        -- Personal values and their salts, beside the log, per bundle (erasable).
        CREATE TABLE personal (
            id INTEGER PRIMARY KEY,
            log_id INTEGER NOT NULL,
            first_seq INTEGER NOT NULL,
            data BLOB NOT NULL,
            UNIQUE (log_id, first_seq)
        );
        -- Merkle node hashes of every level, 256 per row (levels 0, 8, 16... are
        -- exactly C2SP tlog-tiles tiles). Partial tiles grow by concatenation.
        CREATE TABLE tiles (
            id INTEGER PRIMARY KEY,
            log_id INTEGER NOT NULL,
            level INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            hashes BLOB NOT NULL,
            UNIQUE (log_id, level, idx)
        );
        -- 64-bit keys of event ids: small rows, so the index stays in cache
        CREATE TABLE dedup (
            log_id INTEGER NOT NULL,
            key INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (log_id, key, seq)
        ) WITHOUT ROWID;
        CREATE TABLE checkpoints (
            id INTEGER PRIMARY KEY,
            log_id INTEGER NOT NULL,
            size INTEGER NOT NULL,
            root BLOB NOT NULL,
            note TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX checkpoints_by_size ON checkpoints (log_id, size);
        CREATE TABLE tokens (
            hash BLOB PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            tenant TEXT,
            scopes TEXT NOT NULL,
            name TEXT NOT NULL,
            created TEXT NOT NULL,
            revoked TEXT
        );
        CREATE TABLE signing_keys (
            public_key BLOB PRIMARY KEY,
            created TEXT NOT NULL,
            retired TEXT
        );
        """,
    ),
    (
        2,
        """
        -- The producer's original object for events that came through a source
        -- (Kubernetes, CloudTrail, ...), byte-exact and zstd-compressed. Its SHA-256 is in
        -- the entry (`raw.sha256`), so it is as tamper-evident as the entry itself.
        CREATE TABLE raws (
            log_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            format TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (log_id, seq)
        );
        """,
    ),
    (
        3,
        """
        -- Per-action JSON Schemas for the metadata/resource of an action, per tenant,
        -- versioned: a new PUT adds a version, old ones stay readable.
        CREATE TABLE action_schemas (
            tenant TEXT NOT NULL,
            action TEXT NOT NULL,
            version INTEGER NOT NULL,
            schema TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (tenant, action, version)
        );
        """,
    ),
    (
        4,
        """
        -- Saved searches: a named query (and its window and columns) per tenant, shared
        -- by name. `body` is the JSON the API took, replaced as a whole on PUT.
        CREATE TABLE saved_searches (
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            body TEXT NOT NULL,
            created_by TEXT NOT NULL,
            updated TEXT NOT NULL,
            PRIMARY KEY (tenant, name)
        );
        """,
    ),
    (
        5,
        """
        -- Detection: where each log's rule pass has read up to (the next seq to read),
        -- advanced in the same transaction as the state and alerts of that pass.
        CREATE TABLE detect_cursors (
            log_id INTEGER PRIMARY KEY,
            next_seq INTEGER NOT NULL
        );
        -- Window state of stateful rules (counts, first-seen sets), opaque bytes per
        -- (rule, key): a pass deletes a row when its window empties.
        CREATE TABLE detect_state (
            rule TEXT NOT NULL,
            key TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (rule, key)
        ) WITHOUT ROWID;
        -- Alerts, upserted by id. `body` is the alert's JSON, the other columns are what
        -- the API filters and orders on. `logged_seq` is the seq of the alert's record in
        -- its tenant's log, NULL until it has been appended there.
        CREATE TABLE alerts (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            rule TEXT NOT NULL,
            level TEXT NOT NULL,
            status TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            body TEXT NOT NULL,
            logged_seq INTEGER
        );
        -- the API's listing, newest first, paged by (created, id)
        CREATE INDEX alerts_by_created ON alerts (tenant, created DESC, id DESC);
        -- noise control: the newest open alert with a dedup key
        CREATE INDEX alerts_by_dedup ON alerts (tenant, dedup_key, status, created);
        -- the few alerts still to append to their log, so the scan never walks them all
        CREATE INDEX alerts_unlogged ON alerts (created, id) WHERE logged_seq IS NULL;
        -- One alert's delivery to one sink: "pending" (retried at next_attempt),
        -- "delivered", or "dead" once the retries ran out (the dead-letter list).
        CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            alert_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            sink TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            last_error TEXT
        );
        -- the sender's queue: only pending rows, in the order they fall due
        CREATE INDEX deliveries_due ON deliveries (next_attempt, id) WHERE status = 'pending';
        -- the API's listing, newest first
        CREATE INDEX deliveries_by_updated ON deliveries (tenant, updated DESC, id DESC);
        """,
    ),
    (
        6,
        """
        -- Data subjects (64-bit keys of actor ids, emails, committed values) to the seqs
        -- holding their personal values or raw objects: how erasure and subject access
        -- find a subject's events. Beside the log, deleted by erasure.
        CREATE TABLE subjects (
            log_id INTEGER NOT NULL,
            key INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (log_id, key, seq)
        ) WITHOUT ROWID;
        -- Events whose personal values or raw object an erasure deleted, with the seq of
        -- that erasure's record, so verify and readers can say "erased", not "missing".
        CREATE TABLE erased (
            log_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            by_seq INTEGER NOT NULL,
            PRIMARY KEY (log_id, seq)
        ) WITHOUT ROWID;
        -- Server secrets made once (the pseudonym secret tenant keys derive from).
        CREATE TABLE secrets (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL
        );
        """,
    ),
    (
        7,
        """
        -- The newest ingest-bus message (JetStream stream sequence) in each log: where
        -- a sequencer taking over resumes the stream (bus/).
        ALTER TABLE logs ADD COLUMN bus_seq INTEGER NOT NULL DEFAULT 0;
        -- One sequencer per log: a lease with an epoch that fences off a former holder.
        CREATE TABLE leases (
            log_id INTEGER PRIMARY KEY,
            holder TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            expires REAL NOT NULL
        );
        """,
    ),
    (
        8,
        """
        -- Retention purges: runs [first_seq, end_seq) of seqs whose entry bytes went
        -- (their bundle holds b"" there, leaves and tiles stay), with the seq of the
        -- retention record that purged them. Runs of one record merge when they touch.
        CREATE TABLE purged (
            log_id INTEGER NOT NULL,
            first_seq INTEGER NOT NULL,
            end_seq INTEGER NOT NULL,
            record_seq INTEGER NOT NULL,
            PRIMARY KEY (log_id, first_seq)
        ) WITHOUT ROWID;
        -- purge deletes a seq's subject rows without knowing their keys
        CREATE INDEX subjects_by_seq ON subjects (log_id, seq);
        -- A tenant's retention policy set through the API (JSON, retention/ owns it).
        CREATE TABLE retention (
            tenant TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            updated TEXT NOT NULL,
            updated_by TEXT NOT NULL
        );
        -- Legal holds, `released` NULL while active.
        CREATE TABLE holds (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            query TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created TEXT NOT NULL,
            since TEXT,
            until TEXT,
            released TEXT,
            released_by TEXT,
            record_seq INTEGER,
            release_seq INTEGER,
            PRIMARY KEY (tenant, id)
        );
        -- Witnesses' cosignature lines on the log's checkpoints.
        CREATE TABLE cosignatures (
            log_id INTEGER NOT NULL,
            size INTEGER NOT NULL,
            witness TEXT NOT NULL,
            root BLOB NOT NULL,
            line TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (log_id, size, witness)
        );
        -- The witness server's latest checkpoint per log origin (compare and set).
        CREATE TABLE witness_heads (
            origin TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            root BLOB NOT NULL
        );
        -- Ranges [first_seq, end_seq) sealed into the cold archive.
        CREATE TABLE archives (
            log_id INTEGER NOT NULL,
            first_seq INTEGER NOT NULL,
            end_seq INTEGER NOT NULL,
            url TEXT NOT NULL,
            manifest_url TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            checkpoint_size INTEGER NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (log_id, first_seq)
        );
        """,
    ),
]
