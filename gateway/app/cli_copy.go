package app

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
	"github.com/gatehouse-id/gatehouse/gateway/store/postgres"
)

// storeCommand moves the state between store backends.
func storeCommand(configPath *string, environ []string, stdout io.Writer) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{Use: "store", Short: "Move the gateway's state between stores"}
	cp := &cobra.Command{
		Use:   "copy --from bolt:PATH --to postgres[:DSN]",
		Short: "Copy a stopped gateway's bbolt file into an empty PostgreSQL database, and verify it",
		Long: `Copies everything a bbolt store holds (organizations, users, groups and
their members, the outbox with its event numbers, cursors and dead letters,
sessions, keys, settings and other records, the audit log, id maps) into an
empty PostgreSQL database, in one transaction, then reads both back and
compares the count of each kind of item per organization. Stop the gateway
first: the bbolt file is opened read-only and must not change meanwhile.
Unexpired sign-in values (requests in flight, used assertions) are
copied too.

--to postgres uses store.postgres.dsn and schema from the configuration;
--to postgres:DSN names the database (its password is then on the command
line: prefer the configuration's env: or file: reference).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*configPath, environ)
			if err != nil {
				return err
			}
			path, ok := strings.CutPrefix(from, "bolt:")
			if !ok || path == "" {
				return usageError{fmt.Errorf("--from must be bolt:PATH (the gatehouse.db of a stopped gateway)")}
			}
			dsn, schema := cfg.Store.Postgres.DSN.Value(), cfg.Store.Postgres.Schema
			switch {
			case to == "postgres":
			case strings.HasPrefix(to, "postgres:"):
				dsn = strings.TrimPrefix(to, "postgres:")
			default:
				return usageError{fmt.Errorf("--to must be postgres (the configuration's database) or postgres:DSN")}
			}
			if dsn == "" {
				return fmt.Errorf("no PostgreSQL database: set store.postgres.dsn (GATEHOUSE_STORE_POSTGRES_DSN) or give --to postgres:DSN")
			}
			ctx := cmd.Context()
			src, err := bolt.Open(path, bolt.Options{ReadOnly: true, Timeout: time.Second})
			if err != nil {
				return fmt.Errorf("open %s (is the gateway stopped?): %w", path, err)
			}
			defer src.Close()
			dst, err := postgres.Open(ctx, dsn, postgres.Options{Schema: schema})
			if err != nil {
				return err
			}
			defer dst.Close()
			return CopyStore(ctx, src, dst, stdout)
		},
	}
	cp.Flags().StringVar(&from, "from", "", "bolt:PATH of the store to copy")
	cp.Flags().StringVar(&to, "to", "postgres", "postgres (the configuration's database) or postgres:DSN")
	cmd.AddCommand(cp)
	return cmd
}

// tally counts a store's items per organization and kind ("events:last"
// is the newest event number).
type tally map[gateway.OrgID]map[string]uint64

func tallyOf(ctx context.Context, s gateway.Exporter) (tally, error) {
	t := tally{}
	err := s.Export(ctx, func(it gateway.DumpItem) error {
		m := t[it.Org]
		if m == nil {
			m = map[string]uint64{}
			t[it.Org] = m
		}
		switch {
		case it.Registry != nil:
			m["registry"]++
		case it.User != nil:
			m["users"]++
		case it.Group != nil:
			m["groups"]++
			m["members"] += uint64(len(it.Members))
		case it.Event != nil:
			m["events"]++
		case it.Cursor != nil:
			m["cursors"]++
		case it.DeadLetter != nil:
			m["dead letters"]++
		case it.Session != nil:
			m["sessions"]++
		case it.LastLogin != nil:
			m["last logins"]++
		case it.Key != nil:
			m["keys"]++
		case it.Record != nil:
			m["records"]++
		case it.Audit != nil:
			m["audit entries"]++
		case it.IDMap != nil:
			m["id maps"]++
		case it.Ephemeral != nil:
			m["sign-in values"]++
		default:
			m["events:last"] = it.LastSeq
		}
		return nil
	})
	return t, err
}

// CopyStore copies src into dst (empty) and verifies that both hold as
// many items of each kind per organization.
func CopyStore(ctx context.Context, src gateway.Exporter, dst interface {
	gateway.Importer
	gateway.Exporter
}, out io.Writer) error {
	want, err := tallyOf(ctx, src)
	if err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	if err := dst.Import(ctx, func(put func(gateway.DumpItem) error) error { return src.Export(ctx, put) }); err != nil {
		return err
	}
	got, err := tallyOf(ctx, dst)
	if err != nil {
		return fmt.Errorf("read the copy back: %w", err)
	}
	var diffs []string
	for _, org := range slices.Sorted(maps.Keys(want)) {
		for _, kind := range slices.Sorted(maps.Keys(want[org])) {
			if kind == "sign-in values" {
				continue // they may expire between the two reads
			}
			if w, g := want[org][kind], got[org][kind]; w != g {
				diffs = append(diffs, fmt.Sprintf("%s %s: %d in the source, %d in the copy", org, kind, w, g))
			}
		}
		fmt.Fprintf(out, "%s: %s\n", org, describe(want[org]))
	}
	for org := range got {
		if _, ok := want[org]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: in the copy only", org))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the copy differs from the source:\n  %s", strings.Join(diffs, "\n  "))
	}
	fmt.Fprintf(out, "copied and verified: %d scopes, every kind of item counted in both\n", len(want))
	return nil
}

func describe(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}
