// Command gatehouse is a SCIM/SSO protocol gateway deployed beside a web app.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse-id/gatehouse/gateway/app"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `usage: gatehouse <command> [--config FILE]

commands:
  serve         run the gateway (production)
  demo          run a local gateway with SCIM enabled and a generated token
  check-config  print the effective configuration and every problem in it
  version       print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path to the YAML configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "gatehouse", version)
		return 0
	case "check-config":
		return app.CheckConfig(*configPath, environ, stdout, stderr)
	case "serve", "demo":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		var err error
		if cmd == "serve" {
			err = app.Serve(ctx, *configPath, environ, stderr)
		} else {
			err = app.Demo(ctx, *configPath, environ, stdout, stderr)
		}
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse:", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
