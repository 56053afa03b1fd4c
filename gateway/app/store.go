package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway"
	"github.com/gatehouse-id/gatehouse/gateway/metrics"
	"github.com/gatehouse-id/gatehouse/gateway/store/bolt"
	"github.com/gatehouse-id/gatehouse/gateway/store/postgres"
)

// openStore opens the store the configuration names: bbolt's file in
// data_dir, or the PostgreSQL database replicas share (its migrations
// applied first, under an advisory lock).
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, reg *prometheus.Registry) (gateway.Store, error) {
	// data_dir holds the bbolt file, and with either store the operations
	// token the CLI reads.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data_dir %q: %w", cfg.DataDir, err)
	}
	switch cfg.Store.Type {
	case "postgres":
		pc := cfg.Store.Postgres
		s, err := postgres.Open(ctx, pc.DSN.Value(), postgres.Options{Schema: pc.Schema, MaxConns: int32(pc.MaxConns),
			StatementTimeout: time.Duration(pc.StatementTimeout)})
		if err != nil {
			return nil, fmt.Errorf("open store (postgres): %w", err)
		}
		return s, nil
	default:
		s, err := bolt.Open(filepath.Join(cfg.DataDir, DBFile), bolt.Options{
			Timeout: time.Duration(cfg.Store.OpenTimeout),
			NoSync:  !cfg.Store.FSync,
		})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		for _, note := range s.Notes() {
			log.Warn("store: " + note)
		}
		metrics.RegisterCommitStats(reg, func() (uint64, uint64, float64) {
			st := s.CommitStats()
			return st.Commits, st.Writes, st.Time.Seconds()
		})
		return s, nil
	}
}
