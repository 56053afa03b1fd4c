// Command gatehouse is a SCIM/SSO protocol gateway deployed beside a web app.
package main

import (
	"os"

	"github.com/gatehouse-id/gatehouse/gateway/app"
)

// version and commit are set at link time:
// -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)".
// Without them the binary names the commit Go recorded when it was built
// from a checkout.
var (
	version = "dev"
	commit  = ""
)

func main() {
	v := version
	if commit != "" && v != "dev" {
		v += " (commit " + commit[:min(len(commit), 12)] + ")"
	}
	os.Exit(app.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr, v))
}
