package sqldb

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/gateway"
)

func TestClassify(t *testing.T) {
	for code, permanent := range map[string]bool{
		"23505": true,  // unique violation: the same row again
		"23502": true,  // not null
		"22001": true,  // value too long
		"23503": false, // foreign key: the row it names may be on its way
		"42P01": false, // undefined table: a migration not run yet
		"42501": false, // permission denied: a grant to add
		"40P01": false, // deadlock
		"08006": false, // connection failure
	} {
		err := classify(fmt.Errorf("statement: %w", &pgconn.PgError{Code: code}))
		if got := errors.Is(err, gateway.ErrPermanent); got != permanent {
			t.Errorf("%s: permanent=%v, want %v", code, got, permanent)
		}
	}
	if classify(errors.New("dial tcp: connection refused")) == nil || errors.Is(classify(errors.New("x")), gateway.ErrPermanent) {
		t.Error("a network error is retried")
	}
}

func TestParseStatement(t *testing.T) {
	cases := []struct {
		in, sql string
		params  []string
		err     bool
	}{
		{"INSERT INTO t VALUES (:user.id, :user.email, :user.id)", "INSERT INTO t VALUES ($1, $2, $1)", []string{"user.id", "user.email"}, false},
		{"SELECT ':not.a.param', \"col:x\", now()::text", "SELECT ':not.a.param', \"col:x\", now()::text", nil, false},
		{"INSERT INTO m VALUES (:group.id, :member.id)", "INSERT INTO m VALUES ($1, $2)", []string{"group.id", "member.id"}, false},
		{"SELECT :user.shoeSize", "", nil, true},
		{"SELECT 1 -- hidden", "", nil, true},
		{"SELECT 'open", "", nil, true},
	}
	for _, tc := range cases {
		st, err := parseStatement(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if err == nil && (st.sql != tc.sql || fmt.Sprint(st.params) != fmt.Sprint(tc.params)) {
			t.Errorf("%q → %q %v, want %q %v", tc.in, st.sql, st.params, tc.sql, tc.params)
		}
	}
}
