package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/gateway"
)

const decisionsUsage = `usage: hookwall decisions open [-c gateway.toml] [--id DECISION_ID [--raw]] [FILE|-]

  open    print a decision log with its sealed bodies in the clear

With [delivery] encryption_keys, captured bodies ([log] body) are logged sealed: body_sealed
and body_key instead of body. open reads FILE (default: [log] decisions of the config; - is
standard input) and prints each line with body in the clear, as a log without keys has it,
opening each body with the config's keys. --id prints only that decision's lines; --raw
then prints its body's bytes exactly, alone. A body that does not open is an error naming
the line, the decision and the key, and the exit status is 1.
`

// cmdDecisions reads decision logs offline, with the config's keys.
func cmdDecisions(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "open" {
		fmt.Fprint(stderr, decisionsUsage)
		return 2
	}
	fs := flag.NewFlagSet("decisions open", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlags(fs)
	id := fs.String("id", "", "only the lines of this decision id")
	raw := fs.Bool("raw", false, "with --id: print the body's bytes exactly, and nothing else")
	files, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	if len(files) > 1 || *raw && *id == "" {
		fmt.Fprint(stderr, decisionsUsage)
		return 2
	}
	opener, cfg, err := gateway.LogOpener(*cfgPath, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall decisions open: %v\n", err)
		return 1
	}
	if opener == nil {
		opener = noKeys{cfg.File}
	}
	name := ""
	if len(files) == 1 {
		name = files[0]
	}
	if name == "" {
		name = cfg.Log.Decisions
		if name == "" || name == "off" || name == "stdout" {
			fmt.Fprintf(stderr, "hookwall decisions open: %s: [log] decisions is %q, not a file: name the file to read\n", cfg.File, name)
			return 2
		}
	}
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "hookwall decisions open: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	failed, matched := 0, 0
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	rd := bufio.NewReaderSize(in, 64<<10)
	for n := 1; ; n++ {
		line, rerr := rd.ReadBytes('\n')
		line = bytes.TrimRight(line, "\r\n")
		// A record's decision_id is its first field: the same text further in (a label a
		// policy copied from a client) is another record's.
		if len(line) > 0 && (*id == "" || bytes.HasPrefix(line, []byte(`{"decision_id":"`+*id+`"`))) {
			if err := openLine(out, line, opener, *raw); err != nil {
				failed++
				fmt.Fprintf(stderr, "hookwall decisions open: %s:%d: %v\n", name, n, err)
				if mk := (*delivery.MissingKeyError)(nil); errors.As(err, &mk) {
					fmt.Fprintf(stderr, "  add the secret that was %q to [secrets] and to [delivery] encryption_keys of %s (after the first key), then run this again\n", mk.KeyID, cfg.File)
				}
			} else {
				matched++
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			fmt.Fprintf(stderr, "hookwall decisions open: %s: %v\n", name, rerr)
			return 1
		}
	}
	if *id != "" && matched == 0 && failed == 0 {
		fmt.Fprintf(stderr, "hookwall decisions open: %s: no line with decision id %s\n", name, *id)
		return 1
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// openLine writes line with its body opened, or with raw only the body's bytes (a body
// logged in the clear is what its JSON string holds).
func openLine(out io.Writer, line []byte, o decisionlog.Opener, raw bool) error {
	opened, sb, body, err := decisionlog.Unseal(line, o)
	if err != nil {
		if sb != nil {
			return fmt.Errorf("decision %s: %w", sb.DecisionID, err)
		}
		return err
	}
	if !raw {
		_, err = out.Write(append(opened, '\n'))
		return err
	}
	if sb == nil {
		var l struct {
			Request struct{ Body string } `json:"request"`
		}
		_ = json.Unmarshal(opened, &l) // Unseal parsed it already
		body = []byte(l.Request.Body)
	}
	_, err = out.Write(body)
	return err
}

// noKeys opens nothing: the config has no [delivery] encryption_keys.
type noKeys struct{ file string }

func (k noKeys) Open(keyID string, _, _ []byte) ([]byte, error) {
	return nil, fmt.Errorf("sealed with key %q, but %s has no [delivery] encryption_keys: %w", keyID, k.file, &delivery.MissingKeyError{KeyID: keyID})
}
