// Package bolt is Gatehouse's gateway.Store on bbolt (go.etcd.io/bbolt).
//
// # Layout
//
// One file, data_dir/gatehouse.db. Top-level buckets:
//
//	meta                      schema_version → uint64 big-endian (see SchemaVersion)
//	tenants                   one nested bucket per organization id ("default")
//
// Inside each org bucket (every key is therefore scoped by org):
//
//	users                     user id → user record (see below)
//	groups                    group id → group record (without members)
//	idx_user_username         fold(userName) → user id            UNIQUE
//	idx_user_externalid       externalId 0x00 user id → ""        exact match
//	idx_user_email            fold(email) 0x00 user id → ""       every email of the user
//	idx_group_displayname     fold(displayName) → group id        UNIQUE
//	idx_group_externalid      externalId 0x00 group id → ""
//	edges_group_user          group id 0x00 user id → member display
//	edges_user_group          user id 0x00 group id → ""
//	outbox                    seq (uint64 big-endian, NextSequence) → event record
//	counters                  "users" | "groups" | "outbox" → uint64 big-endian
//	outbox_cursors            adapter id → uint64 big-endian (events up to it are done)
//	outbox_dead_letters       adapter id 0x00 seq → dead letter (bookkeeping + event record)
//	id_maps                   adapter id 0x00 resource id → the downstream's id
//	sessions                  session id (SHA-256 of the cookie token) → session record
//	sessions_by_user          user id 0x00 session id → ""
//	sessions_by_idp           "u" IdP subject 0x00 session id → "", "s" IdP session 0x00 session id → ""
//	keys                      name → key material (the gateway's own signing keys)
//	ephemeral                 namespace 0x00 key → expiry (uint64 unix nanoseconds) + value
//
// fold is package fold's key (full Unicode case folding on NFC text, as
// PRECIS maps): userName and group displayName are case-insensitive
// (RFC 7643 caseExact=false), and straße/STRASSE or NFC/NFD café are one
// name. Schema version 1 keyed them with strings.ToLower; Open rebuilds
// both indexes when it finds a version 1 file (migrate.go). Membership edges are written
// in both directions in the same transaction, so "members of a group" and
// "groups of a user" are both prefix scans. Ids are UUIDv7 strings, which
// sort by creation time: list order is stable and inserts append.
//
// # Records
//
// A user or group record is a binary header holding the typed fields
// (length-prefixed strings, varint times and version; see codec.go)
// followed by the SCIM document as compact JSON. Reads slice the header
// and hand the document on undecoded; list responses splice it into the
// wire format as is. Outbox events use the same scheme, with the user or
// group snapshot as a nested record.
//
// # Transactions
//
// Every change writes the record, its index entries, its edges and its
// outbox events in one transaction (the transactional outbox). Writes go
// through an adaptive group commit (commit.go): one goroutine commits
// every write queued so far in one transaction and one fsync, as soon as
// the previous commit is done, so that concurrent requests share a commit
// and a lone one waits for nothing. Write functions compute everything
// from the transaction and may run more than once; the heavy part of an
// update (a large PATCH) is computed by the caller before, with the
// version it read checked inside. Reads decode records inside a
// View transaction (decoding copies), so no bbolt memory escapes.
package bolt
