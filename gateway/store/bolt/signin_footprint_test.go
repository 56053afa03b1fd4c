package bolt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// TestSignInFootprint reports the file size after 100,000 SAML sign-ins'
// worth of sign-in data (each: its request stored, then its assertion id
// recorded and the request taken, as the ACS does), without a sweeper and
// with one every 5 minutes, the sign-ins spread at 10 a second of
// simulated time. Opt-in, it takes ~1 min:
//
//	GHTEST_FOOTPRINT=1 go test ./gateway/store/bolt -run SignInFootprint -v
func TestSignInFootprint(t *testing.T) {
	if os.Getenv("GHTEST_FOOTPRINT") == "" {
		t.Skip("set GHTEST_FOOTPRINT=1")
	}
	const signIns, perSecond = 100000, 10
	for _, sweep := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "s.db")
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		start := time.Now()
		lastSweep, left := start, 0
		for i := range signIns {
			now := start.Add(time.Duration(i) * time.Second / perSecond)
			req, assertion := randomID(), randomID()
			if _, err := s.Ephemeral().PutIfAbsent(ctx, gateway.DefaultOrg, "saml-request", req, []byte(`{"return":"/dashboard"}`), now.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			// An assertion valid 5 minutes, plus the skew and a minute.
			if _, _, err := s.Ephemeral().PutIfAbsentAndTake(ctx, gateway.DefaultOrg, "saml-assertion", assertion, nil, now.Add(9*time.Minute), "saml-request", req); err != nil {
				t.Fatal(err)
			}
			if sweep && now.Sub(lastSweep) >= 5*time.Minute {
				if _, err := s.Ephemeral().Sweep(ctx, gateway.DefaultOrg, now); err != nil {
					t.Fatal(err)
				}
				lastSweep = now
			}
		}
		end := start.Add(signIns * time.Second / perSecond)
		if left, err = s.Ephemeral().Sweep(ctx, gateway.DefaultOrg, end.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		fi, _ := os.Stat(path)
		t.Logf("sweeper=%-5v %d sign-ins at %d/s: file %.2f MiB; still held at the end (swept an hour later): %d", sweep, signIns, perSecond, float64(fi.Size())/(1<<20), left)
	}
}

func randomID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return "id-" + hex.EncodeToString(b)
}
