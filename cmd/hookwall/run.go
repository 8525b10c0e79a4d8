package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/gateway"
	"github.com/hookwall/hookwall/engine/timerslack"
)

// defaultGOGC trades memory for throughput: the gateway's live heap is small, so the
// default GOGC=100 collects tens of times a second under load. GOGC in the environment wins.
const defaultGOGC = 400

func configFlags(fs *flag.FlagSet) *string {
	p := fs.String("config", "gateway.toml", "path to the config file")
	fs.StringVar(p, "c", "gateway.toml", "path to the config file (shorthand)")
	return p
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlags(fs)
	drain := fs.Duration("drain", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	if err := fs.Parse(args); err != nil || !noArgs(fs, stderr) {
		return 2
	}
	// Caught from here on: SIGHUP's default action ends the process, and a reload asked for
	// while the gateway starts (compiling its filters can take seconds) must not. One that
	// comes before the gateway is up is made once it is.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// A write to a closed pipe fails (EPIPE) instead of ending the process: with [log]
	// decisions = "stdout" (or the log on stderr) piped to a shipper, a shipper that exits
	// would otherwise take the gateway down at its next write (Go ends a process on SIGPIPE
	// from a write to fd 1 or 2). The lost records are counted as a full disk's are.
	signal.Ignore(syscall.SIGPIPE)
	// SIGUSR1 reopens the decision-log file, after logrotate moved it.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	level, slack := "info", time.Duration(0)
	if cfg, err := config.Load(*cfgPath); err == nil {
		level, slack = cfg.Log.Level, cfg.Server.TimerSlack.D()
	}
	logger := newLogger(stderr, level)
	if slack > 0 {
		// First, before the gateway opens a file or a listener: on success Ensure starts the
		// binary again, with the same pid and arguments, and does not return. A caught signal
		// goes back to its default action across the exec, and SIGHUP's ends the process: one
		// sent before the new image reaches Notify above killed the gateway. An ignored
		// signal stays ignored across it, and the Go runtime keeps an inherited SIGHUP
		// ignored until Notify, so SIGHUP is ignored over the exec. Nothing is lost: the new
		// image reads the config after its Notify.
		signal.Ignore(syscall.SIGHUP)
		if err := timerslack.Ensure(slack); err != nil && !errors.Is(err, timerslack.ErrUnsupported) {
			logger.Warn("[server] timer_slack not applied: the gateway keeps the slack it was started with", "timer_slack", slack, "error", err)
		}
		signal.Notify(hup, syscall.SIGHUP) // not executed again: caught again
	}
	// go-redis logs every failed dial through a process-wide logger; route it to ours at debug
	// so a Redis outage (already counted and logged once per decision) does not flood stderr.
	goredis.SetLogger(redisLogger{logger})
	cache, _ := os.UserCacheDir()
	if cache != "" {
		cache = filepath.Join(cache, "hookwall", "wasm")
	}
	// A second SIGTERM or SIGINT stops at once: an operator who presses Ctrl-C again does not
	// wait out -drain (or a slow start). Requests in flight are cut, as when the drain runs
	// out. Caught from here on, so that the first signal, whenever it comes, is counted.
	stopNow, returned := make(chan os.Signal, 2), make(chan struct{})
	signal.Notify(stopNow, os.Interrupt, syscall.SIGTERM)
	defer func() { signal.Stop(stopNow); close(returned) }()
	go func() {
		for first := true; ; first = false {
			select {
			case s := <-stopNow:
				if !first {
					logger.Warn("second signal: stopping now; requests and deliveries in flight are cut", "signal", s.String())
					os.Exit(1)
				}
			case <-returned:
				return
			}
		}
	}()
	g, err := gateway.New(ctx, *cfgPath, gateway.Options{Logger: logger, CacheDir: cache})
	if err != nil {
		if ctx.Err() != nil {
			// SIGTERM or SIGINT while starting (a bundle's download, filters compiling): a
			// stop asked for, not a broken config; what it cut is no error to report.
			logger.Info("stopped while starting")
			return 0
		}
		fmt.Fprintf(stderr, "hookwall: %v\n", err)
		return 1
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: reloading")
				_, _ = g.Reload(ctx)
			case <-usr1:
				if err := g.ReopenLog(); err != nil {
					logger.Error("SIGUSR1: reopening the decision log failed; still writing to the old file", "err", err)
				} else {
					logger.Info("SIGUSR1: decision log reopened")
				}
			}
		}
	}()
	if err := g.Run(ctx, *drain); err != nil {
		fmt.Fprintf(stderr, "hookwall: %v\n", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlags(fs)
	if err := fs.Parse(args); err != nil || !noArgs(fs, stderr) {
		return 2
	}
	checked, err := gateway.Check(ctx, *cfgPath, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	defer checked.Close()
	fmt.Fprintf(stdout, "%s: ok (revision %s)\n", *cfgPath, checked.Revision())
	// Which evaluator decides each route: a policy outside the compiled subset still works,
	// at topdown's cost, and the reason names the construct to change.
	for _, r := range checked.Routes() {
		ev := r.Evaluator
		if r.Why != "" {
			ev += " (" + r.Why + ")"
		}
		fmt.Fprintf(stdout, "  route %s: policy %s, evaluator %s\n", r.Name, r.Package, ev)
	}
	fmt.Fprintln(stdout, crossCheckLine(checked.Policies()))
	return 0
}

// noArgs refuses the positional arguments of a command that takes none, and says so: "hookwall
// check other.toml" would otherwise check ./gateway.toml (the -c default), and could pass.
func noArgs(fs *flag.FlagSet, stderr io.Writer) bool {
	if fs.NArg() == 0 {
		return true
	}
	hint := ""
	if strings.HasSuffix(fs.Arg(0), ".toml") {
		hint = " (the config is given with -c: -c " + fs.Arg(0) + ")"
	}
	fmt.Fprintf(stderr, "hookwall %s: unexpected argument %q%s\n", fs.Name(), fs.Arg(0), hint)
	return false
}

// crossCheckLine says what the live cross-check of compiled decisions does.
func crossCheckLine(p config.Policies) string {
	if p.CrossCheck == 0 {
		return "  cross-check: off (cross_check = 0)"
	}
	then := "moves the route to opa until the next reload"
	if p.OnDivergence == config.DivergenceLog {
		then = "is logged and counted"
	}
	ceiling := "no ceiling (cross_check_max = 0)"
	if p.CrossCheckMax > 0 {
		ceiling = "at most " + strconv.Itoa(p.CrossCheckMax) + " a second"
	}
	return fmt.Sprintf("  cross-check: %s%% of compiled decisions, %s, evaluated again with topdown; a divergence %s",
		strconv.FormatFloat(p.CrossCheck*100, 'g', 4, 64), ceiling, then)
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}
