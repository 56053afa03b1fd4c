package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/adapters/sqldb"
	"github.com/gatehouse-id/gatehouse/conformance/adaptertest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// pgDSN is the PostgreSQL server the sqldb tests use: GHTEST_PG_DSN, or
// the one .ci/run installs and starts. Without a server the tests skip
// loudly, unless GHTEST_PG_REQUIRED=1 (CI), where that is a failure.
func pgDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("GHTEST_PG_DSN")
	if dsn == "" {
		dsn = "postgres://gatehouse:gatehouse@127.0.0.1:5432/gatehouse_test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("GHTEST_PG_REQUIRED") == "1" {
			t.Fatalf("PostgreSQL is required (GHTEST_PG_REQUIRED=1) but cannot be reached at %s: %v", redactDSN(dsn), err)
		}
		t.Skipf("\n\n*** SKIPPING: no PostgreSQL at %s (%v).\n*** Run .ci/run, or set GHTEST_PG_DSN, to run the sqldb tests. ***\n", redactDSN(dsn), err)
	}
	conn.Close(ctx)
	return dsn
}

func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 {
		if j := strings.Index(dsn, "://"); j > 0 && j < i {
			return dsn[:j+3] + "…" + dsn[i:]
		}
	}
	return dsn
}

// appSchema creates the app's tables in a schema of their own and drops
// it after the test.
func appSchema(t *testing.T, dsn string) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "app_" + hex.EncodeToString(b[:])
	for _, q := range []string{
		`CREATE SCHEMA ` + schema,
		`CREATE TABLE ` + schema + `.users (gatehouse_id text PRIMARY KEY, user_name text NOT NULL, email text, display_name text, active boolean NOT NULL)`,
		`CREATE TABLE ` + schema + `.groups (gatehouse_id text PRIMARY KEY, name text NOT NULL)`,
		`CREATE TABLE ` + schema + `.group_members (group_id text NOT NULL, user_id text NOT NULL, PRIMARY KEY (group_id, user_id))`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		conn.Close(context.Background())
	})
	return schema, conn
}

// appStatements maps every event type onto the app's tables.
func appStatements(s string) map[string][]string {
	upd := `UPDATE ` + s + `.users SET user_name = :user.userName, email = :user.email, display_name = :user.displayName, active = :user.active WHERE gatehouse_id = :user.id`
	return map[string][]string{
		"user.created":          {`INSERT INTO ` + s + `.users (gatehouse_id, user_name, email, display_name, active) VALUES (:user.id, :user.userName, :user.email, :user.displayName, :user.active)`},
		"user.updated":          {upd},
		"user.deactivated":      {upd},
		"user.reactivated":      {upd},
		"user.deleted":          {`DELETE FROM ` + s + `.group_members WHERE user_id = :user.id`, `DELETE FROM ` + s + `.users WHERE gatehouse_id = :user.id`},
		"group.created":         {`INSERT INTO ` + s + `.groups (gatehouse_id, name) VALUES (:group.id, :group.displayName)`, `INSERT INTO ` + s + `.group_members VALUES (:group.id, :member.id)`},
		"group.updated":         {`UPDATE ` + s + `.groups SET name = :group.displayName WHERE gatehouse_id = :group.id`},
		"group.deleted":         {`DELETE FROM ` + s + `.group_members WHERE group_id = :group.id`, `DELETE FROM ` + s + `.groups WHERE gatehouse_id = :group.id`},
		"group.members_added":   {`INSERT INTO ` + s + `.group_members VALUES (:group.id, :member.id) ON CONFLICT DO NOTHING`},
		"group.members_removed": {`DELETE FROM ` + s + `.group_members WHERE group_id = :group.id AND user_id = :member.id`},
	}
}

func readApp(t *testing.T, conn *pgx.Conn, s string) adaptertest.Snapshot {
	t.Helper()
	ctx := context.Background()
	snap := adaptertest.Snapshot{Users: map[string]adaptertest.User{}, Groups: map[string]adaptertest.Group{}}
	rows, err := conn.Query(ctx, `SELECT gatehouse_id, user_name, coalesce(email, ''), coalesce(display_name, ''), active FROM `+s+`.users`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var u adaptertest.User
		if err := rows.Scan(&id, &u.UserName, &u.Email, &u.DisplayName, &u.Active); err != nil {
			t.Fatal(err)
		}
		snap.Users[id] = u
	}
	rows, err = conn.Query(ctx, `SELECT g.gatehouse_id, g.name, coalesce(array_agg(m.user_id ORDER BY m.user_id) FILTER (WHERE m.user_id IS NOT NULL), '{}')
		FROM `+s+`.groups g LEFT JOIN `+s+`.group_members m ON m.group_id = g.gatehouse_id GROUP BY g.gatehouse_id, g.name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var g adaptertest.Group
		if err := rows.Scan(&id, &g.DisplayName, &g.Members); err != nil {
			t.Fatal(err)
		}
		if len(g.Members) == 0 {
			g.Members = nil
		}
		snap.Groups[id] = g
	}
	return snap
}

func openSQL(t *testing.T, cfg *sqldb.Config, id string) gateway.Adapter {
	t.Helper()
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatalf("config: %v", ps)
	}
	a, err := cfg.Open(context.Background(), gateway.AdapterEnv{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAdapterConformanceSQLDB(t *testing.T) {
	dsn := pgDSN(t)
	schema, conn := appSchema(t, dsn)
	adaptertest.Run(t, adaptertest.Harness{
		Open: func(t *testing.T) gateway.Adapter {
			return openSQL(t, &sqldb.Config{DSN: gateway.NewSecret(dsn), Statements: appStatements(schema), ProcessedTable: schema + ".processed"}, "app-db")
		},
		Downstream: func(t *testing.T) adaptertest.Snapshot { return readApp(t, conn, schema) },
	})
}

// TestSQLDBRefusalsAndOutages: what the database refuses (a constraint)
// is permanent; a database that cannot be reached is retried; values are
// bound, never spliced into SQL.
func TestSQLDBRefusalsAndOutages(t *testing.T) {
	dsn := pgDSN(t)
	schema, conn := appSchema(t, dsn)
	st := appStatements(schema)
	a := openSQL(t, &sqldb.Config{DSN: gateway.NewSecret(dsn), Statements: st, ProcessedTable: schema + ".processed"}, "app-db")
	defer a.Close()
	evil := `x'); DROP TABLE ` + schema + `.users; --`
	e := gateway.WireEvent{Contract: gateway.EventContract, ID: "e1", Type: gateway.OpUserCreated, Seq: 1, Org: "default", Time: time.Now(),
		User: &gateway.WireUser{ID: "u1", UserName: evil, Active: true, Version: 1, Attributes: json.RawMessage(`{}`)}}
	if err := a.Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if got := readApp(t, conn, schema).Users["u1"].UserName; got != evil {
		t.Fatalf("the value was not stored as given: %q", got)
	}
	dup := e
	dup.ID, dup.Seq = "e2", 2 // a second create of the same user: the primary key refuses it
	if err := a.Deliver(context.Background(), dup); !errors.Is(err, gateway.ErrPermanent) {
		t.Fatalf("a constraint violation: %v, want permanent", err)
	}
	down := openSQL(t, &sqldb.Config{DSN: gateway.NewSecret("postgres://gatehouse:gatehouse@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"), Statements: st}, "down")
	defer down.Close()
	if err := down.Deliver(context.Background(), e); err == nil || errors.Is(err, gateway.ErrPermanent) {
		t.Fatalf("an unreachable database: %v, want a retryable error", err)
	}
}

func TestSQLDBConfigProblems(t *testing.T) {
	cfg := &sqldb.Config{DSN: gateway.NewSecret("not a dsn at all ::"), ProcessedTable: "x; drop", Statements: map[string][]string{
		"user.exploded": {"SELECT 1"},
		"user.created":  {"INSERT INTO t VALUES (:user.shoeSize)", "SELECT ':ok' -- comment", "INSERT INTO t VALUES (:user.id::text, 'it''s')"},
	}}
	var paths []string
	for _, p := range cfg.Validate() {
		paths = append(paths, p.Path)
	}
	want := "dsn,statements.user.created[0],statements.user.created[1],statements.user.exploded,processed_table"
	if strings.Join(paths, ",") != want {
		t.Fatalf("problems at %v, want %s", paths, want)
	}
}

// TestSQLDBThroughTheGateway: SCIM changes land in the app's tables.
func TestSQLDBThroughTheGateway(t *testing.T) {
	dsn := pgDSN(t)
	schema, conn := appSchema(t, dsn)
	cfg, _ := json.Marshal([]map[string]any{{"id": "app-db", "type": "sqldb", "config": map[string]any{
		"dsn": "env:APP_DATABASE_URL", "statements": appStatements(schema), "processed_table": schema + ".processed"}}})
	g := startGateway(t, "", "GATEHOUSE_ADAPTERS="+string(cfg), "APP_DATABASE_URL="+dsn)
	id := g.call("POST", "/Users", oktaUser("ada@example.com", "Ada", "Lovelace")).must(t, 201).str("id")
	g.call("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[{"op":"replace","path":"active","value":false}]}`).must(t, 200)
	gid := g.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[{"value":"`+id+`"}]}`).must(t, 201).str("id")
	eventually(t, "the rows", func() bool {
		s := readApp(t, conn, schema)
		u, g := s.Users[id], s.Groups[gid]
		return u.UserName == "ada@example.com" && !u.Active && g.DisplayName == "Eng" && len(g.Members) == 1
	})
}
