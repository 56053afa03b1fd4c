package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/config"
	"github.com/gatehouse-id/gatehouse/gateway/admin"
	"github.com/gatehouse-id/gatehouse/gateway/outbox"
)

// outboxCommand steers delivery through the running gateway's operations
// listener (it holds the database lock; see opsapi.go).
func outboxCommand(configPath *string, environ []string, stdout io.Writer) *cobra.Command {
	var adapter, org string
	var from uint64
	var asJSON bool
	call := func(ctx context.Context, method, path string, q url.Values, out any) error {
		cfg, err := config.Load(*configPath, environ)
		if err != nil {
			return err
		}
		base, err := opsURL(cfg.OpsListen)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		u := base + path
		if org != "" {
			if q == nil {
				q = url.Values{}
			}
			q.Set("org", org)
		}
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return err
		}
		if path != "/outbox/status" {
			token, err := readOpsToken(cfg.DataDir)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("the gateway's operations listener (%s) does not answer: %w", base, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if resp.StatusCode != http.StatusOK {
			var e struct{ Error string }
			if json.Unmarshal(body, &e) == nil && e.Error != "" {
				return fmt.Errorf("%s", e.Error)
			}
			return fmt.Errorf("%s answered %d", path, resp.StatusCode)
		}
		if asJSON {
			_, err := stdout.Write(body)
			return err
		}
		return json.Unmarshal(body, out)
	}
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Show and steer delivery to the adapters, through the gateway running on this host",
		Long: `Talks to the operations listener (ops_listen) of the gateway running on this
host, which holds the database; the endpoints answer loopback clients only.`,
	}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	cmd.PersistentFlags().StringVar(&org, "org", "", "the organization whose delivery (default: the default organization)")
	status := &cobra.Command{
		Use:   "status",
		Short: "Each adapter's cursor, lag, oldest undelivered event and dead letters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st []outbox.Status
			if err := call(cmd.Context(), http.MethodGet, "/outbox/status", nil, &st); err != nil || asJSON {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ADAPTER\tCURSOR\tLAST\tLAG\tOLDEST UNDELIVERED\tDEAD LETTERS\tSTORED\tLAST FAILURE")
			for _, s := range st {
				oldest := "-"
				if !s.Oldest.IsZero() {
					oldest = s.Oldest.Format(time.RFC3339) + " (" + time.Since(s.Oldest).Round(time.Second).String() + " ago)"
				}
				failure := "-"
				if s.LastFailure != "" {
					failure = s.LastFailureAt.Format(time.RFC3339) + ": " + s.LastFailure
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%d\t%s\n", s.Adapter, s.Cursor, s.LastSeq, s.Lag, oldest, s.DeadLetters, s.Stored, failure)
			}
			return tw.Flush()
		},
	}
	dead := &cobra.Command{
		Use:   "dead-letters",
		Short: "An adapter's dead letters: what failed and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var dls []admin.DeadLetterView
			if err := call(cmd.Context(), http.MethodGet, "/outbox/dead-letters", url.Values{"adapter": {adapter}}, &dls); err != nil || asJSON {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTYPE\tRESOURCE\tATTEMPTS\tAT\tERROR")
			for _, d := range dls {
				why := d.LastError
				if d.HeldBehind != 0 {
					why = "held back behind " + strconv.FormatUint(d.HeldBehind, 10)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.Seq, d.Type, d.Resource, d.Attempts, d.At.Format(time.RFC3339), strings.ReplaceAll(why, "\n", " "))
			}
			return tw.Flush()
		},
	}
	replay := &cobra.Command{
		Use:   "replay",
		Short: "Deliver an adapter's dead letters again (each user's or group's in order)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Scheduled int }
			q := url.Values{"adapter": {adapter}, "from": {strconv.FormatUint(from, 10)}}
			if err := call(cmd.Context(), http.MethodPost, "/outbox/replay", q, &out); err != nil || asJSON {
				return err
			}
			fmt.Fprintf(stdout, "%d dead letter(s) of %s scheduled for delivery; see gatehouse outbox status\n", out.Scheduled, adapter)
			return nil
		},
	}
	for _, c := range []*cobra.Command{dead, replay} {
		c.Flags().StringVar(&adapter, "adapter", "", "the adapter's id (required)")
		_ = c.MarkFlagRequired("adapter")
	}
	replay.Flags().Uint64Var(&from, "from", 0, "only dead letters from this sequence number on (with the earlier ones of the same resources)")
	cmd.AddCommand(status, dead, replay)
	return cmd
}
