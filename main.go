// Command gatehouse is a SCIM/SSO protocol gateway deployed beside a web app.
package main

import (
	"os"

	"github.com/gatehouse-id/gatehouse/gateway/app"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(app.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr, version))
}
