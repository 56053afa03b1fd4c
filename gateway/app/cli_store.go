package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// backupCommand takes a consistent copy of the running gateway's bbolt
// file through its operations listener (the gateway holds the file's
// lock, and serves on meanwhile).
func backupCommand(configPath *string, environ []string, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the running gateway's bbolt store to FILE, consistently, while it serves",
		Long: `Asks the running gateway (on its operations listener, with the token it
wrote to data_dir) for a consistent copy of its bbolt file, written from one
read transaction while requests go on, and saves it to FILE: first to a
temporary file beside it, checked to open as a Gatehouse store, then renamed.
Restore it with 'gatehouse restore FILE' while the gateway is stopped.
A PostgreSQL store is backed up with the database's own tools.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(*configPath, environ)
			if err != nil {
				return err
			}
			if cfg.Store.Type == "postgres" {
				return fmt.Errorf("store.type is postgres: back it up with PostgreSQL's own tools (pg_dump, base backups, your provider's snapshots)")
			}
			base, err := opsURL(cfg.OpsListen)
			if err != nil {
				return err
			}
			token, err := readOpsToken(cfg.DataDir)
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), "POST", base+"/backup", nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("the gateway's operations listener (%s) does not answer: %w", base, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return fmt.Errorf("the gateway refused the backup (%d): %s", resp.StatusCode, strings.TrimSpace(string(body)))
			}
			dest := args[0]
			f, err := os.CreateTemp(filepath.Dir(dest), ".gatehouse-backup-*")
			if err != nil {
				return err
			}
			tmp := f.Name()
			defer os.Remove(tmp)            // gone once renamed
			n, err := io.Copy(f, resp.Body) // a cut stream is an error (Content-Length)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("the backup was not completed: %w", err)
			}
			if err := checkStoreFile(tmp); err != nil {
				return fmt.Errorf("the backup does not open as a Gatehouse store: %w", err)
			}
			if err := os.Rename(tmp, dest); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "backed up %d bytes to %s\n", n, dest)
			return nil
		},
	}
}

// checkStoreFile opens path read-only as a Gatehouse store (damaged and
// foreign files are refused, as at start) and reads every page of it.
func checkStoreFile(path string) error {
	s, err := bolt.Open(path, bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Verify()
}

// restoreCommand puts a backup in place of the stopped gateway's bbolt
// file, keeping the file it replaces.
func restoreCommand(configPath *string, environ []string, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Put a backup in place of the stopped gateway's bbolt store",
		Long: `Checks that FILE opens as a Gatehouse store, then puts a copy of it at
data_dir/gatehouse.db. The gateway must be stopped (its file lock is taken
to make sure). The file it replaces is kept beside it as
gatehouse.db.before-restore-<time>.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(*configPath, environ)
			if err != nil {
				return err
			}
			if err := checkStoreFile(args[0]); err != nil {
				return fmt.Errorf("%s does not open as a Gatehouse store: %w", args[0], err)
			}
			dest := filepath.Join(cfg.DataDir, DBFile)
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return err
			}
			// Copied beside the destination first, then renamed: an
			// interrupted restore leaves no partial store behind.
			tmp := dest + ".restoring"
			_ = os.Remove(tmp)
			if err := copyFile(args[0], tmp); err != nil {
				_ = os.Remove(tmp)
				return err
			}
			if _, err := os.Stat(dest); err == nil {
				// Taking the lock (shared: read-only, so the file is left
				// as it is) proves no gateway has it open; a damaged file
				// (the reason for many a restore) is set aside all the same.
				var damaged *bolt.DamagedError
				s, err := bolt.Open(dest, bolt.Options{ReadOnly: true, Timeout: time.Second})
				switch {
				case err == nil:
					if err := s.Close(); err != nil {
						_ = os.Remove(tmp)
						return err
					}
				case errors.As(err, &damaged):
				default:
					_ = os.Remove(tmp)
					return fmt.Errorf("stop the gateway first: %w", err)
				}
				kept := dest + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
				if err := os.Rename(dest, kept); err != nil {
					_ = os.Remove(tmp)
					return err
				}
				fmt.Fprintf(stdout, "kept the replaced store as %s\n", kept)
			}
			if err := os.Rename(tmp, dest); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "restored %s to %s\n", args[0], dest)
			return nil
		},
	}
}

// copyFile copies src to a new dst (0600), synced.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
