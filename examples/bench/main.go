// Command bench is hookwall's reference load benchmark, kept out of the product binary:
//
//	go run ./examples/bench [flags]   measure the bare fasthttp proxy, hookwall and its peers
//
// It builds the hookwall command of this module (or takes -hookwall), starts it on
// examples/bench/gateway.toml beside a fasthttp upstream and a bare fasthttp reverse proxy
// (copies of itself, "bench node …"), drives them A/B alternating and reports ratios paired
// by round. A round counts only when the decision log and the upstream agree that every
// request was allowed and forwarded once, with no duplicate delivery.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "node" {
		return cmdNode(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		fmt.Fprintf(stderr, "bench: unexpected argument %q; flags only (-h lists them)\n", args[0])
		return 2
	}
	return cmdBench(ctx, args, stdout, stderr)
}
