-- +goose Up
-- The gateway's state. Every row but the registry's is scoped by its
-- organization (org). Forward-only: a release adds migrations, never
-- changes or removes one. Ids and keys sort in byte order (COLLATE "C"),
-- as the store contract's "id order" means, whatever the database's
-- default collation (en_US.UTF-8 would put "a-c" after "ab").

-- The registry of organizations (gateway.Organization as JSON) and the
-- email domains each owns (lower case, unique across organizations).
CREATE TABLE gh_orgs (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);
CREATE TABLE gh_org_domains (
    domain text COLLATE "C" PRIMARY KEY,
    org    text COLLATE "C" NOT NULL REFERENCES gh_orgs (id) ON DELETE CASCADE
);

-- Per-organization counters: the last event and audit numbers (their
-- rows are locked by the writes that number, which is what makes event
-- numbers gapless in commit order) and the number of users and groups.
CREATE TABLE gh_counters (
    org   text COLLATE "C" NOT NULL,
    name  text COLLATE "C" NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (org, name)
);

-- Users: the typed fields in columns, the SCIM document as JSON. name_key
-- is the userName's folding key (gateway/fold), unique per organization;
-- email_keys are the folded emails. created and modified are Unix
-- nanoseconds, the gateway's own precision (timestamptz keeps
-- microseconds, and an event's copy of a record must equal the record).
CREATE TABLE gh_users (
    org          text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    name_key     text COLLATE "C" NOT NULL,
    user_name    text        NOT NULL,
    external_id  text        NOT NULL,
    active       boolean     NOT NULL,
    given_name   text        NOT NULL,
    family_name  text        NOT NULL,
    display_name text        NOT NULL,
    emails       text[]      NOT NULL,
    email_keys   text[]      NOT NULL,
    source       text        NOT NULL,
    pools        text[]      NOT NULL,
    role         text        NOT NULL,
    created      bigint      NOT NULL,
    modified     bigint      NOT NULL,
    version      bigint      NOT NULL,
    doc          json        NOT NULL,
    PRIMARY KEY (org, id)
);
CREATE UNIQUE INDEX gh_users_name ON gh_users (org, name_key);
CREATE INDEX gh_users_external_id ON gh_users (org, external_id) WHERE external_id <> '';
CREATE INDEX gh_users_email_keys ON gh_users USING gin (email_keys);
CREATE INDEX gh_users_pools ON gh_users USING gin (pools);

CREATE TABLE gh_groups (
    org          text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    name_key     text COLLATE "C" NOT NULL,
    display_name text        NOT NULL,
    external_id  text        NOT NULL,
    source       text        NOT NULL,
    created      bigint      NOT NULL,
    modified     bigint      NOT NULL,
    version      bigint      NOT NULL,
    doc          json        NOT NULL,
    PRIMARY KEY (org, id)
);
CREATE UNIQUE INDEX gh_groups_name ON gh_groups (org, name_key);
CREATE INDEX gh_groups_external_id ON gh_groups (org, external_id) WHERE external_id <> '';

-- Membership edges; the keys make a dangling edge impossible, even when
-- a user's deletion races a group's change on another replica.
CREATE TABLE gh_members (
    org      text COLLATE "C" NOT NULL,
    group_id text COLLATE "C" NOT NULL,
    user_id  text COLLATE "C" NOT NULL,
    display  text NOT NULL,
    PRIMARY KEY (org, group_id, user_id),
    FOREIGN KEY (org, group_id) REFERENCES gh_groups (org, id) ON DELETE CASCADE,
    FOREIGN KEY (org, user_id) REFERENCES gh_users (org, id) ON DELETE CASCADE
);
CREATE INDEX gh_members_user ON gh_members (org, user_id, group_id);

-- The outbox: events numbered per organization, the cursor of each
-- consumer (adapter) and the dead letters each set aside.
CREATE TABLE gh_events (
    org      text COLLATE "C" NOT NULL,
    seq      bigint      NOT NULL,
    occurred timestamptz NOT NULL,
    body     json        NOT NULL,
    PRIMARY KEY (org, seq)
);
CREATE TABLE gh_cursors (
    org      text COLLATE "C" NOT NULL,
    consumer text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL,
    PRIMARY KEY (org, consumer)
);
CREATE TABLE gh_dead_letters (
    org         text COLLATE "C" NOT NULL,
    consumer    text COLLATE "C" NOT NULL,
    seq         bigint      NOT NULL,
    attempts    integer     NOT NULL,
    last_error  text        NOT NULL,
    at          timestamptz NOT NULL,
    held_behind bigint      NOT NULL,
    body        json        NOT NULL,
    PRIMARY KEY (org, consumer, seq)
);

CREATE TABLE gh_sessions (
    org       text COLLATE "C" NOT NULL,
    id        text COLLATE "C" NOT NULL,
    user_id   text COLLATE "C" NOT NULL,
    protocol  text        NOT NULL,
    created   timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    expires   timestamptz NOT NULL,
    PRIMARY KEY (org, id)
);
CREATE INDEX gh_sessions_user ON gh_sessions (org, user_id);
CREATE TABLE gh_last_logins (
    org     text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    at      timestamptz NOT NULL,
    PRIMARY KEY (org, user_id)
);

-- Administrative records (settings, credentials, invitations, pools,
-- roles) by kind and id, each with its version.
CREATE TABLE gh_records (
    org     text COLLATE "C" NOT NULL,
    kind    text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    value   json   NOT NULL,
    PRIMARY KEY (org, kind, id)
);

CREATE TABLE gh_audit (
    org    text COLLATE "C" NOT NULL,
    seq    bigint NOT NULL,
    actor  text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL,
    entry  json   NOT NULL,
    PRIMARY KEY (org, seq)
);
CREATE INDEX gh_audit_actor ON gh_audit (org, actor, seq);
CREATE INDEX gh_audit_target ON gh_audit (org, target, seq);

CREATE TABLE gh_id_maps (
    org           text COLLATE "C" NOT NULL,
    adapter       text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    downstream_id text NOT NULL,
    PRIMARY KEY (org, adapter, id)
);

-- Key material the gateway generates once (signing keys, SP keys).
CREATE TABLE gh_keys (
    org   text COLLATE "C" NOT NULL,
    name  text COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (org, name)
);

-- Short-lived single-use values: sign-ins in flight, replay records.
CREATE TABLE gh_ephemeral (
    org     text COLLATE "C" NOT NULL,
    ns      text COLLATE "C" NOT NULL,
    key     text COLLATE "C" NOT NULL,
    expires timestamptz NOT NULL,
    value   bytea       NOT NULL,
    PRIMARY KEY (org, ns, key)
);
CREATE INDEX gh_ephemeral_expires ON gh_ephemeral (org, expires);
