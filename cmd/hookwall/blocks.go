package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/hookwall/hookwall/engine/decisionlog"
)

const blocksUsage = "usage: hookwall blocks list|lift [-c gateway.toml] [--admin URL] [--token T] [--json] [SOURCE]\n"

// cmdBlocks lists or lifts the watcher's blocks through a running gateway's admin API.
func cmdBlocks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "lift") {
		fmt.Fprint(stderr, blocksUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("blocks "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlags(fs)
	adminURL := fs.String("admin", "", "admin base URL (default: [admin] listen of the config, https when it has tls_cert)")
	token := fs.String("token", "", "admin token (default: [admin] token of the config)")
	asJSON := fs.Bool("json", false, "list: print the blocks as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	client, err := adminTarget(*cfgPath, *adminURL)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall blocks: %v\n", err)
		return 1
	}
	if *token != "" {
		client.token = *token
	}
	call := func(method, path string) (int, []byte, error) { return client.do(ctx, method, path) }
	switch sub {
	case "list":
		if fs.NArg() != 0 {
			fmt.Fprint(stderr, blocksUsage)
			return 2
		}
		st, body, err := call(http.MethodGet, "/-/blocks")
		if err != nil || st != http.StatusOK {
			fmt.Fprintf(stderr, "hookwall blocks list: %s\n", callError(st, body, err))
			return 1
		}
		if *asJSON {
			_, _ = stdout.Write(decisionlog.AppendControlsEscaped(nil, body))
			return 0
		}
		var doc struct {
			Blocks []struct {
				Source  string    `json:"source"`
				Until   time.Time `json:"until"`
				Strikes int       `json:"strikes"`
				Route   string    `json:"route"`
				Kind    string    `json:"kind"`
				Gateway string    `json:"gateway"`
			} `json:"blocks"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			fmt.Fprintf(stderr, "hookwall blocks list: unexpected answer: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tUNTIL\tSTRIKES\tROUTE\tKIND\tGATEWAY")
		for _, b := range doc.Blocks {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", printable(b.Source), b.Until.UTC().Format(time.RFC3339), b.Strikes, printable(b.Route), printable(b.Kind), printable(b.Gateway))
		}
		_ = tw.Flush()
		return 0
	default:
		if fs.NArg() != 1 {
			fmt.Fprint(stderr, blocksUsage)
			return 2
		}
		source := fs.Arg(0)
		st, body, err := call(http.MethodDelete, "/-/blocks/"+url.PathEscape(source))
		switch {
		case err == nil && st == http.StatusOK:
			fmt.Fprintf(stdout, "lifted %s\n", source)
			return 0
		case err == nil && st == http.StatusNotFound:
			fmt.Fprintf(stderr, "hookwall blocks lift: %s: %s\n", source, callError(st, body, nil))
			return 1
		}
		fmt.Fprintf(stderr, "hookwall blocks lift: %s\n", callError(st, body, err))
		return 1
	}
}

// callError describes a failed admin call: the transport error, or the status and the
// answer's error field.
func callError(status int, body []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	var e struct {
		Error  string `json:"error"`
		Result string `json:"result"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Error
	if msg == "" {
		msg = e.Result
	}
	return fmt.Sprintf("admin answered %d %s", status, msg)
}
