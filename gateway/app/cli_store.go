package app

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
	"github.com/gatehouse-id/gatehouse/gateway/store/postgres"
)

// migrateCommand brings the store's schema up to this release's, as a
// start would: a rollout can migrate first, then roll the replicas.
func migrateCommand(configPath *string, environ []string, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's schema migrations (forward-only) and exit",
		Long: `Brings the store's schema up to this release's. Every start does the same
(under a PostgreSQL advisory lock, so replicas starting together are safe);
run it before a rollout to migrate once, ahead of the replicas. Migrations
are forward-only: a release older than the schema it finds refuses to start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*configPath, environ)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			switch cfg.Store.Type {
			case "postgres":
				pc := cfg.Store.Postgres
				m, err := postgres.Migrate(ctx, pc.DSN.Value(), postgres.Options{Schema: pc.Schema})
				if err != nil {
					return err
				}
				if m.Before == m.After {
					fmt.Fprintf(stdout, "postgres: the schema is at version %d, this release's; nothing to do\n", m.After)
				} else {
					fmt.Fprintf(stdout, "postgres: the schema went from version %d to %d\n", m.Before, m.After)
				}
			default:
				path := filepath.Join(cfg.DataDir, DBFile)
				s, err := bolt.Open(path, bolt.Options{Timeout: time.Duration(cfg.Store.OpenTimeout)})
				if err != nil {
					return err
				}
				for _, note := range s.Notes() {
					fmt.Fprintln(stdout, "bolt:", note)
				}
				if err := s.Close(); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "bolt: %s is at schema version %d, this release's\n", path, bolt.SchemaVersion)
			}
			return nil
		},
	}
}
