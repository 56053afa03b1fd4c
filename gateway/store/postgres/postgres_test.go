package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-id/gatehouse/conformance/storetest"
	"github.com/gatehouse-id/gatehouse/gateway"
)

// dsn is the PostgreSQL server the tests use: GHTEST_PG_DSN, or the one
// .ci/run installs and starts. Without a server the tests skip loudly,
// unless GHTEST_PG_REQUIRED=1 (CI), where that is a failure.
func dsn(t *testing.T) string {
	t.Helper()
	d := os.Getenv("GHTEST_PG_DSN")
	if d == "" {
		d = "postgres://gatehouse:gatehouse@127.0.0.1:5432/gatehouse_test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d)
	if err != nil {
		if os.Getenv("GHTEST_PG_REQUIRED") == "1" {
			t.Fatalf("PostgreSQL is required (GHTEST_PG_REQUIRED=1) but cannot be reached: %v", err)
		}
		t.Skipf("\n\n*** SKIPPING: no PostgreSQL (%v).\n*** Run .ci/run, or set GHTEST_PG_DSN, to run the PostgreSQL store tests. ***\n", err)
	}
	conn.Close(ctx)
	return d
}

// newSchema names a schema of its own for one test, dropped at its end.
func newSchema(t *testing.T, d string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, d)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func openSchema(t *testing.T, d, schema string) *Store {
	t.Helper()
	s, err := Open(context.Background(), d, Options{Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	d := dsn(t)
	storetest.Run(t, func(t *testing.T) gateway.Store { return openSchema(t, d, newSchema(t, d)) })
}

// TestSharedConformance: two stores on one database are two replicas.
func TestSharedConformance(t *testing.T) {
	d := dsn(t)
	storetest.RunShared(t, func(t *testing.T) (gateway.Store, gateway.Store) {
		schema := newSchema(t, d)
		return openSchema(t, d, schema), openSchema(t, d, schema)
	})
}

// TestMigrationsOnceUnderARace: replicas starting together against an
// empty database apply the migrations once between them.
func TestMigrationsOnceUnderARace(t *testing.T) {
	d := dsn(t)
	schema := newSchema(t, d)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(context.Background(), d, Options{Schema: schema})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a replica starting beside others: %v", err)
		}
	}
	s := openSchema(t, d, schema)
	var applied int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	entries, _ := migrations.ReadDir("migrations")
	if applied != len(entries) {
		t.Fatalf("%d migrations recorded, want %d (each once)", applied, len(entries))
	}
}

// TestUnreachableIsUnavailable: a database that cannot be reached is
// ErrUnavailable (SCIM answers 503 with Retry-After), never a 500.
func TestUnreachableIsUnavailable(t *testing.T) {
	// Port 1 on the loopback: nothing listens, connections are refused.
	pool, err := pgxpool.New(context.Background(), "postgres://gatehouse:secret@127.0.0.1:1/gatehouse?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := &Store{pool: pool}
	_, err = s.Users().Get(context.Background(), "org-a", "u1")
	if gateway.ErrorCodeOf(err) != gateway.ErrUnavailable || strings.Contains(err.Error(), "secret") {
		t.Fatalf("an unreachable database: %v (code %s)", err, gateway.ErrorCodeOf(err))
	}
	if _, err := Open(context.Background(), "postgres://gatehouse:secret@127.0.0.1:1/gatehouse?sslmode=disable&connect_timeout=2", Options{}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open of an unreachable database: %v", err)
	}
	// A DSN PostgreSQL cannot read is refused without being repeated.
	if _, err := Open(context.Background(), "host=db password='s3cr et", Options{}); err == nil || strings.Contains(err.Error(), "s3cr") {
		t.Fatalf("Open of an unreadable DSN: %v", err)
	}
}

// TestNewerSchemaRefused: a binary older than the schema it finds
// refuses to start and says why, changing nothing.
func TestNewerSchemaRefused(t *testing.T) {
	d := dsn(t)
	schema := newSchema(t, d)
	s := openSchema(t, d, schema)
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), d, Options{Schema: schema})
	if err == nil || !strings.Contains(err.Error(), "schema is at version 99999, newer than this release knows") {
		t.Fatalf("an older binary on a newer schema: %v", err)
	}
	m, err := Migrate(context.Background(), d, Options{Schema: newSchema(t, d)})
	if err != nil || m.Before != 0 || m.After < 1 {
		t.Fatalf("migrate an empty schema: %+v %v", m, err)
	}
}

// TestLeases: one replica at a time holds a lease; it passes on when the
// holder releases it or dies, and a holder whose connection is cut learns
// it has lost it within the keepalive.
func TestLeases(t *testing.T) {
	if leaseNotice >= LeaseGrace {
		t.Fatalf("a cut-off holder notices within %v, but another replica starts after %v", leaseNotice, LeaseGrace)
	}
	d := dsn(t)
	schema := newSchema(t, d)
	a, b := openSchema(t, d, schema), openSchema(t, d, schema)
	ctx := context.Background()
	_, ok, err := a.TryLease(ctx, "delivery/0")
	if !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if _, ok, err := b.TryLease(ctx, "delivery/0"); ok || err != nil {
		t.Fatalf("a second replica claimed a held lease: %v %v", ok, err)
	}
	if _, ok, _ := b.TryLease(ctx, "delivery/1"); !ok {
		t.Fatal("another lease is free")
	}
	// Another gateway in another schema does not contend.
	other := openSchema(t, d, newSchema(t, d))
	if _, ok, _ := other.TryLease(ctx, "delivery/0"); !ok {
		t.Fatal("a gateway in another schema shares the lease")
	}
	a.ReleaseLease(ctx, "delivery/0")
	if _, ok, _ := b.TryLease(ctx, "delivery/0"); !ok {
		t.Fatal("a released lease was not taken up")
	}
	// The holder's connection is cut (the database restarted, a network
	// partition): it hears so, and the lease is free for the others.
	lostA, ok, _ := a.TryLease(ctx, "delivery/2")
	if !ok {
		t.Fatal("claim delivery/2")
	}
	a.leases.mu.Lock()
	pid := a.leases.conn.PgConn().PID()
	a.leases.mu.Unlock()
	if _, err := b.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lostA:
	case <-time.After(5 * time.Second):
		t.Fatal("the holder did not hear that its lease connection broke")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok, _ := b.TryLease(ctx, "delivery/2"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease of a holder cut off was not taken up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIDOrderIsByteOrder: ids sort as bytes, as the contract's "id order"
// means (and bbolt does), even in a database whose default collation is
// a language's (en-US puts "B" after "a").
func TestIDOrderIsByteOrder(t *testing.T) {
	d := dsn(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "gh_collation_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"); err != nil {
		t.Skipf("cannot create a database with the ICU en-US collation here: %v", err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)") })
	u, err := url.Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	s, err := Open(ctx, u.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var viaLanguage bool
	if err := s.pool.QueryRow(ctx, `SELECT 'B' > 'a'`).Scan(&viaLanguage); err != nil || !viaLanguage {
		t.Fatalf("the database does not sort as en-US (%v): the test proves nothing", err)
	}
	for _, id := range []string{"ab", "a-c", "B"} {
		if _, err := s.Records().Put(ctx, "org-a", "pool", id, 0, []byte(`{}`), gateway.Journal{}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.Records().List(ctx, "org-a", "pool")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.ID)
	}
	if strings.Join(got, " ") != "B a-c ab" {
		t.Fatalf("records in %v, want byte order [B a-c ab]", got)
	}
}

// TestDeepPagesAreExact: list pages at any offset, sequential or not,
// equal the id order, before and after users come and go on this replica
// or another (the bookmarks of the pager are never used stale).
func TestDeepPagesAreExact(t *testing.T) {
	d := dsn(t)
	schema := newSchema(t, d)
	a, b := openSchema(t, d, schema), openSchema(t, d, schema)
	ctx := context.Background()
	const n = 1500
	for i := range n {
		now := time.Now().UTC()
		u := &gateway.User{ID: fmt.Sprintf("u%05d", i*7%n), Org: "org-a", UserName: fmt.Sprintf("p%d@x.example", i), Active: true,
			Source: gateway.SourceSCIM, Version: 1, Created: now, Modified: now, Attributes: gateway.NewDocument(map[string]any{})}
		if err := a.Users().Create(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := func() []string {
		var ids []string
		if err := a.Users().Scan(ctx, "org-a", "", func(u *gateway.User) bool { ids = append(ids, u.ID); return true }); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	check := func(what string, offsets ...int) {
		t.Helper()
		all := want()
		for _, off := range offsets {
			page, total, err := a.Users().List(ctx, "org-a", off, 100)
			if err != nil {
				t.Fatal(err)
			}
			if total != len(all) {
				t.Fatalf("%s: total %d, want %d", what, total, len(all))
			}
			end := min(off+100, len(all))
			for i, u := range page {
				if u.ID != all[off+i] {
					t.Fatalf("%s: page at %d, row %d is %s, want %s", what, off, i, u.ID, all[off+i])
				}
			}
			if len(page) != max(end-off, 0) {
				t.Fatalf("%s: page at %d has %d rows, want %d", what, off, len(page), end-off)
			}
		}
	}
	check("sequential", 0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400)
	check("deep first", 1399, 37, 1024, 513, 1450, 1600)
	// Users come and go on the other replica: positions move.
	if err := b.Users().Delete(ctx, "org-a", "u00000", 0, func(*gateway.User, []*gateway.Group) (gateway.UserDeletion, error) {
		return gateway.UserDeletion{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := b.Users().Create(ctx, &gateway.User{ID: "u00700x", Org: "org-a", UserName: "new@x.example", Active: true, Source: gateway.SourceSCIM,
		Version: 1, Created: now, Modified: now, Attributes: gateway.NewDocument(map[string]any{})}, nil); err != nil {
		t.Fatal(err)
	}
	check("after a delete and a create elsewhere", 600, 100, 700, 1399, 1024, 513, 1450, 0)
}
