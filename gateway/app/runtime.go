package app

import (
	"log/slog"
	"runtime"
	"runtime/debug"
)

// Runtime defaults for serving, each left alone when its standard
// variable (GOMAXPROCS, GOGC) is set in the environment.
const (
	// minProcs: a commit blocks its thread in fsync; with one P the other
	// requests wait until the scheduler notices, which it may do only
	// after milliseconds once idle for a while, and commits then carry one
	// write each. A second P keeps them running (measured pinned to one
	// core: 1,200 vs 3,000-3,750 creates/s at c=8).
	minProcs = 2
	// gcPercent: the gateway's heap is small (tens of MB) and its requests
	// allocate briskly, so the default (100) collects very often; at 400
	// a SCIM write costs about 15% less CPU for a few tens of MB more.
	gcPercent = 400
)

// tuneRuntime applies the serving defaults, environ permitting, and says
// what it did.
func tuneRuntime(environ []string, log *slog.Logger) {
	if lookupEnv(environ, "GOMAXPROCS", "") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
		log.Info("runtime: GOMAXPROCS raised to 2 so that requests run while a commit waits for the disk (set GOMAXPROCS to choose)")
	}
	if lookupEnv(environ, "GOGC", "") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
