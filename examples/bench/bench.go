package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
)

// hitsPath on the upstream answers how many requests it has served; on the control, how many
// hashes it has computed.
const hitsPath = "/__hits"

// maxControlHashes bounds -control-hashes: a thousand sums of a 2 KB body are over a
// millisecond a request, far past any gateway the control stands for.
const maxControlHashes = 1000

// benchSetup is one row of the report: where requests go and which processes serve them.
type benchSetup struct {
	name, addr, path string
	route            string       // hookwall's route, whose decisions the log must show allowed; "" for the others
	queued           bool         // route is queued: audited through the store's depth and the upstream's ids
	admin            adminAPI     // hookwall's admin API (the status page), for a queued route
	dlog             *decisionLog // hookwall's decision log; nil for the others
	pids             func() []int // processes whose CPU time (with their children's) is charged to the setup
	mallocs          func() (uint64, bool)
	status           string // why the setup was not measured ("not installed"), or ""
	hashes           int    // the control's sums a request, audited through its count; 0 for the others
}

type benchResult struct {
	requests, non2xx, errors uint64
	elapsed                  time.Duration
	p50, p99                 time.Duration
	cpu                      time.Duration
	upCPU                    time.Duration // the upstream's CPU over the run; 0 when unread
	mallocs                  uint64
	mallocsOK                bool
	tally                    tally
	void                     string // why the run does not count, or ""
}

func (r benchResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequest is the setup's CPU over the run a request, 0 when either is unknown.
func (r benchResult) cpuPerRequest() float64 {
	if r.cpu <= 0 || r.requests == 0 {
		return 0
	}
	return float64(r.cpu) / float64(r.requests)
}

// cmdBench runs the reference load benchmark: a fasthttp upstream, a bare fasthttp reverse
// proxy and hookwall (examples/bench/gateway.toml), driven A/B alternating in one run.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "examples/bench/gateway.toml", "hookwall config with the routes none, verify, reference, reference-go")
	dur := fs.Duration("d", 5*time.Second, "duration of each measured run")
	conns := fs.Int("conns", 64, "concurrent keep-alive connections")
	rounds := fs.Int("rounds", 3, "A/B rounds, the setups in the order given in odd rounds and reversed in even ones (an even count runs each pair as often in both orders); the median run of each setup is reported, and ratios paired by round")
	driver := fs.String("driver", "auto", "load generator: wrk, go, or auto (wrk when installed)")
	setupsFlag := fs.String("setups", "bare,none,reference,reference-go",
		"setups to run, in order: bare, control (the bare proxy computing SHA-256 of each body -control-hashes times: a proxy with no policy whose CPU a request is chosen, to set a gateway's tail beside that of its CPU), none, verify, reference, reference-go, queued (the reference workload on a queued route, SQLite store), queued-pg (the same on a PostgreSQL server the benchmark starts, when initdb is installed), and the peers "+strings.Join(peerSetups, ", ")+
			" (nginx-opa: nginx auth_request to an OPA server), each run when its binaries are on PATH")
	bodySize := fs.Int("body", 2048, "request body size in bytes")
	hookwallBin := fs.String("hookwall", "", "the hookwall binary to measure; empty: built from ./cmd/hookwall of this module")
	bareAddr := fs.String("bare", benchBare, "the bare proxy's listen address (hookwall's and the upstream's come from the config)")
	controlAddr := fs.String("control", benchControl, "the control's listen address")
	controlHashes := fs.Int("control-hashes", 10, "SHA-256 sums of the body the control computes for each request (0 to 1000)")
	baseline := fs.String("baseline", "", "a second hookwall binary (say, built from main) measured beside -hookwall in every round; its setups are named SETUP@baseline")
	procsFlag := fs.String("procs", "1,2", "GOMAXPROCS values (and cores) of the servers; each gets fresh servers and its own report")
	drain := fs.Bool("drain", false, "instead of the setups: the upstream is down for -outage while -rate requests/s come to the queued route, then comes up; reports how fast the backlog is delivered (GOMAXPROCS: the first -procs value)")
	outage := fs.Duration("outage", 60*time.Second, "with -drain: how long the upstream is down")
	rate := fs.Int("rate", 1000, "with -drain: requests per second sent during the outage")
	watch := fs.Duration("watch", 0, "print, every WATCH of a measured round, the requests a second and the CPU a request of the setup's processes and of the upstream: the upstream's work a request is the same in every setup, so when both move together the core got slower, not the setup (0: off; at least 1s: the kernel counts CPU time in 10 ms ticks)")
	pgoPath := fs.String("pgo", "", "write the gateway's CPU profile over the measured rounds of its setups to this file, merged: the profile of profile-guided optimisation (cmd/hookwall/default.pgo). The gateway gets an admin token for pprof when its config has none; the run's figures include the profiler's cost")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var procsList []int
	for _, f := range strings.Split(*procsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 256 {
			fmt.Fprintf(stderr, "bench: -procs: %q is not a GOMAXPROCS value\n", f)
			return 2
		}
		procsList = append(procsList, n)
	}
	if *controlHashes < 0 || *controlHashes > maxControlHashes {
		fmt.Fprintf(stderr, "bench: -control-hashes: want 0 to %d\n", maxControlHashes)
		return 2
	}
	if *watch != 0 && *watch < time.Second {
		fmt.Fprintln(stderr, "bench: -watch: at least 1s (the kernel counts CPU time in 10 ms ticks), or 0 for off")
		return 2
	}
	if *dur > 2*time.Minute || *rounds > 10 {
		fmt.Fprintln(stderr, "bench: runs are bounded: -d ≤ 2m, -rounds ≤ 10")
		return 2
	}
	if *driver == "auto" {
		*driver = "go"
		if _, err := exec.LookPath("wrk"); err == nil {
			*driver = "wrk"
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	hookwall := *hookwallBin
	if hookwall == "" {
		dir, err := os.MkdirTemp("", "hookwall-bench-bin")
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if hookwall, err = buildHookwall(ctx, dir); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	// Every run is audited against the decision log, so it must be a file.
	if p := cfg.Log.Decisions; p == "stdout" || p == "off" || p == "" {
		fmt.Fprintf(stderr, "bench: %s: log.decisions must be a file: every run is checked against the decision log\n", *cfgPath)
		return 2
	}
	upstream, err := benchUpstreamOf(cfg.Routes)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %s: %v\n", *cfgPath, err)
		return 2
	}
	o := benchOpts{cfgPath: *cfgPath, decisions: cfg.Log.Decisions, deliveries: cfg.Delivery.Path, adminToken: cfg.Admin.Token, self: self, hookwall: hookwall, driver: *driver,
		setups: *setupsFlag, conns: *conns, rounds: *rounds, d: *dur, body: *bodySize,
		gateway: cfg.Server.Listen, admin: cfg.Admin.Listen, upstream: upstream, bare: *bareAddr,
		control: *controlAddr, controlHashes: *controlHashes, watch: *watch}
	if *pgoPath != "" {
		if *drain {
			fmt.Fprintln(stderr, "bench: -pgo profiles the setups' rounds, not -drain")
			return 2
		}
		cleanup, err := o.withAdminToken()
		if err != nil {
			fmt.Fprintf(stderr, "bench: -pgo: %v\n", err)
			return 1
		}
		defer cleanup()
		o.pgo = &pgoProfiles{admin: adminAPI{o.admin, o.adminToken}}
	}
	if *baseline != "" {
		cleanup, err := o.addBaseline(*baseline)
		if err != nil {
			fmt.Fprintf(stderr, "bench: -baseline: %v\n", err)
			return 1
		}
		defer cleanup()
	}
	if *drain {
		if *outage <= 0 || *outage > 10*time.Minute || *rate < 1 || *rate > 100000 {
			fmt.Fprintln(stderr, "bench: -drain: -outage must be in (0, 10m] and -rate in [1, 100000]")
			return 2
		}
		return drainBench(ctx, o, drainOpts{outage: *outage, rate: *rate, procs: procsList[0]}, stdout, stderr)
	}
	code := 0
	for _, procs := range procsList {
		if c := benchAt(ctx, o, procs, stdout, stderr); c != 0 {
			if code == 0 || c == 2 {
				code = c
			}
			if c == 2 || ctx.Err() != nil {
				break
			}
		}
	}
	if o.pgo != nil {
		if code != 0 {
			fmt.Fprintf(stderr, "bench: -pgo: %s not written: the run failed\n", *pgoPath)
			return code
		}
		n, err := o.pgo.write(*pgoPath)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s: the gateway's CPU profile, %d samples from %d profiled rounds\n", *pgoPath, n, len(o.pgo.profiles))
	}
	return code
}

// benchOpts are the flags of one benchmark, shared by its GOMAXPROCS settings.
type benchOpts struct {
	cfgPath, decisions     string
	deliveries             string // the SQLite delivery store of the config (removed before each start)
	self, hookwall, driver string
	setups                 string
	gateway, admin         string       // hookwall's listeners, from the config
	adminToken             string       // the admin API's token, from the config
	upstream, bare         string       // the upstream (the routes' one) and the bare proxy
	control                string       // the control's listen address
	controlHashes          int          // the control's sums a request
	pgo                    *pgoProfiles // with -pgo: the gateway's profiles, gathered over the rounds
	conns, rounds, body    int
	d                      time.Duration
	watch                  time.Duration // with -watch: the interval of the lines printed during a round
	// The baseline hookwall, when there is one: its binary, config copy, listeners, log and store.
	baseHookwall, baseCfgPath, baseGateway, baseAdmin, baseDecisions, baseDeliveries string
}

// addBaseline prepares a second gateway: a copy of the config (configCopy).
func (o *benchOpts) addBaseline(bin string) (cleanup func(), err error) {
	c, err := o.configCopy("baseline", nil)
	if err != nil {
		return nil, err
	}
	o.baseHookwall, o.baseCfgPath, o.baseGateway, o.baseAdmin, o.baseDecisions, o.baseDeliveries = bin, c.path, c.gateway, c.admin, c.decisions, c.deliveries
	return c.cleanup, nil
}

// gatewayCopy is a copy of the config for a second gateway.
type gatewayCopy struct {
	path, gateway, admin, decisions, deliveries string
	cleanup                                     func()
}

// configCopy writes a copy of the config beside it (so its relative paths mean the same),
// on free loopback ports, with a decision log and a SQLite store of its own; edit, when
// set, changes the copy's text further. cleanup removes the copy, its log and its store.
func (o *benchOpts) configCopy(name string, edit func(text string, c gatewayCopy) string) (gatewayCopy, error) {
	raw, err := os.ReadFile(o.cfgPath)
	if err != nil {
		return gatewayCopy{}, err
	}
	f, err := os.CreateTemp(filepath.Dir(o.cfgPath), ".bench-"+name+"-*.toml")
	if err != nil {
		return gatewayCopy{}, err
	}
	f.Close()
	logf, err := os.CreateTemp("", "hookwall-bench-"+name+"-*.log")
	if err != nil {
		os.Remove(f.Name())
		return gatewayCopy{}, err
	}
	logf.Close()
	c := gatewayCopy{path: f.Name(), decisions: logf.Name(), deliveries: logf.Name() + ".db"}
	c.cleanup = func() { os.Remove(c.path); os.Remove(c.decisions); removeSQLite(c.deliveries) }
	var addrs [2]string
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.cleanup()
			return gatewayCopy{}, err
		}
		addrs[i] = l.Addr().String()
		l.Close()
	}
	c.gateway, c.admin = addrs[0], addrs[1]
	text := strings.NewReplacer(
		strconv.Quote(o.gateway), strconv.Quote(c.gateway),
		strconv.Quote(o.admin), strconv.Quote(c.admin),
		strconv.Quote(o.decisions), strconv.Quote(c.decisions),
		strconv.Quote(o.deliveries), strconv.Quote(c.deliveries),
	).Replace(string(raw))
	if edit != nil {
		text = edit(text, c)
	}
	if err := os.WriteFile(c.path, []byte(text), 0o600); err != nil {
		c.cleanup()
		return gatewayCopy{}, err
	}
	cfg, err := config.Load(c.path)
	if err != nil || cfg.Server.Listen != c.gateway || cfg.Admin.Listen != c.admin || cfg.Log.Decisions != c.decisions ||
		(cfg.Delivery.Store == config.StoreSQLite && cfg.Delivery.Path != c.deliveries) {
		c.cleanup()
		return gatewayCopy{}, fmt.Errorf("the config copy did not take its own listeners, log and store (write them as plain quoted strings): %v", err)
	}
	return c, nil
}

// benchUpstreamOf is the one upstream the benchmark routes share: the benchmark serves it.
func benchUpstreamOf(routes []config.Route) (string, error) {
	var addr string
	for _, r := range routes {
		u, err := url.Parse(r.Upstream)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return "", fmt.Errorf("route %s: upstream %q: the benchmark serves a plain http upstream", r.Name, r.Upstream)
		}
		if addr != "" && u.Host != addr {
			return "", fmt.Errorf("route %s: upstream %s: every route must use the same upstream (%s)", r.Name, u.Host, addr)
		}
		addr = u.Host
	}
	if addr == "" {
		return "", errors.New("no route")
	}
	return addr, nil
}

// cpuPlan is where the servers and the load generator run for a GOMAXPROCS value: the
// servers on the first procs cores and the load generator on the next one, when the machine
// has that many; otherwise nothing is pinned and they share the cores. "" means unpinned.
func cpuPlan(procs, ncpu int) (servers, load string) {
	if ncpu <= procs {
		return "", ""
	}
	servers = "0"
	if procs > 1 {
		servers = "0-" + strconv.Itoa(procs-1)
	}
	return servers, strconv.Itoa(procs)
}

// benchAt starts fresh servers with GOMAXPROCS=procs, runs the rounds and prints the report.
func benchAt(ctx context.Context, o benchOpts, procs int, stdout, stderr io.Writer) int {
	// The decision log is part of the workload; emptied first, so repeated runs do not
	// fill the disk (about a kilobyte a request).
	for _, p := range []string{o.decisions, o.baseDecisions} {
		if p == "" {
			continue
		}
		if err := os.Truncate(p, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "bench: decision log: %v\n", err)
			return 1
		}
	}
	// The delivery stores too: each start measures an empty store.
	for _, p := range []string{o.deliveries, o.baseDeliveries} {
		if p != "" {
			removeSQLite(p)
		}
	}
	dlog := &decisionLog{path: o.decisions}
	serverCPUs, loadCPUs := cpuPlan(procs, runtime.NumCPU())
	if _, err := exec.LookPath("taskset"); err != nil {
		serverCPUs, loadCPUs = "", ""
	}
	pin := func(cpus string, cmd []string) []string {
		if cpus == "" {
			return cmd
		}
		return append([]string{"taskset", "-c", cpus}, cmd...)
	}
	placement := "servers and load generator unpinned, sharing the cores"
	if serverCPUs != "" {
		placement = "servers on CPU " + serverCPUs + ", load generator on CPU " + loadCPUs
	}

	var peerDir string // the peers' configs and temp dirs, removed once they have stopped
	defer func() {
		if peerDir != "" {
			_ = os.RemoveAll(peerDir)
		}
	}()
	var afterStop []func() // run once the servers have stopped: what they used goes
	defer func() {
		for _, f := range afterStop {
			f()
		}
	}()
	var running []*exec.Cmd
	defer func() {
		// Newest first: hookwall drains before its upstream goes away.
		for i := len(running) - 1; i >= 0; i-- {
			_ = signalBenchProc(running[i], syscall.SIGTERM)
			_ = running[i].Wait()
		}
	}()
	// start runs one server on the servers' cores. A peer (group) gets a process group of its own,
	// stopped as a whole: nginx's worker goes with its master.
	start := func(name string, argv []string, ready string, env []string, group bool) (*exec.Cmd, error) {
		if c, err := net.DialTimeout("tcp", ready, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: %s is already in use by another process", name, ready)
		}
		argv = pin(serverCPUs, argv)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs)), env...)
		cmd.Stderr = stderr
		if group {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return signalBenchProc(cmd, syscall.SIGKILL) }
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		running = append(running, cmd)
		if err := waitTCP(ctx, ready, 60*time.Second); err != nil {
			return nil, fmt.Errorf("%s did not start: %w", name, err)
		}
		return cmd, nil
	}
	up, err := start("upstream", []string{o.self, "node", "upstream", o.upstream}, o.upstream, nil, false)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	upPID := childPID(up)
	bare, err := start("bare proxy", []string{o.self, "node", "bare", o.bare, o.upstream}, o.bare, nil, false)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	var control *exec.Cmd
	if slices.Contains(strings.Split(o.setups, ","), "control") {
		argv := []string{o.self, "node", "bare", o.control, o.upstream, strconv.Itoa(o.controlHashes)}
		if control, err = start("control", argv, o.control, nil, false); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	gw, err := start("hookwall", []string{o.hookwall, "run", "-c", o.cfgPath}, o.gateway, nil, false)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	pidOf := func(cs ...*exec.Cmd) func() []int {
		return func() []int {
			pids := make([]int, len(cs))
			for i, c := range cs {
				pids[i] = childPID(c)
			}
			return pids
		}
	}
	var baseGW *exec.Cmd
	if o.baseHookwall != "" {
		if baseGW, err = start("baseline hookwall", []string{o.baseHookwall, "run", "-c", o.baseCfgPath}, o.baseGateway, nil, false); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	// The queued setup on PostgreSQL: a server of its own and a second gateway whose store
	// it is, started only when asked for.
	var pgSetup benchSetup
	if slices.Contains(strings.Split(o.setups, ","), "queued-pg") {
		pgSetup = benchSetup{name: "hookwall, reference, queued (PostgreSQL)", path: queuedPath, route: queuedRoute, queued: true}
		pg, status, err := startBenchPostgres(ctx, pin(serverCPUs, nil))
		if err != nil {
			fmt.Fprintf(stderr, "bench: queued-pg: %v\n", err)
			return 1
		}
		if pg != nil {
			afterStop = append(afterStop, pg.Stop)
			c, err := o.configCopy("pg", func(text string, c0 gatewayCopy) string {
				text = strings.Replace(text, "path = "+strconv.Quote(c0.deliveries)+"\n", "", 1)
				return strings.Replace(text, `store = "sqlite"`, `store = "postgres"`+"\nurl = "+strconv.Quote(pg.URL), 1)
			})
			if err != nil {
				fmt.Fprintf(stderr, "bench: queued-pg: %v\n", err)
				return 1
			}
			afterStop = append(afterStop, c.cleanup)
			pgGW, err := start("hookwall (PostgreSQL store)", []string{o.hookwall, "run", "-c", c.path}, c.gateway, nil, false)
			if err != nil {
				fmt.Fprintf(stderr, "bench: %v\n", err)
				return 1
			}
			gwPID := pidOf(pgGW)
			pgSetup.addr, pgSetup.admin, pgSetup.dlog = c.gateway, adminAPI{c.admin, o.adminToken}, &decisionLog{path: c.decisions}
			pgSetup.pids = func() []int { return append(gwPID(), pg.PID) }
			pgSetup.mallocs = func() (uint64, bool) { return scrapeMallocs("http://" + c.admin + "/metrics") }
		} else {
			pgSetup.status = status
			fmt.Fprintf(stderr, "bench: queued-pg: %s, skipped\n", status)
		}
	}
	gwMallocs := func() (uint64, bool) { return scrapeMallocs("http://" + o.admin + "/metrics") }
	bareMallocs := func() (uint64, bool) { return scrapeMallocs("http://" + o.bare + "/__mallocs") }
	controlSetup := benchSetup{name: fmt.Sprintf("bare proxy + %d × SHA-256 of the body", o.controlHashes), addr: o.control,
		path: "/reference", pids: pidOf(control), hashes: o.controlHashes,
		mallocs: func() (uint64, bool) { return scrapeMallocs("http://" + o.control + "/__mallocs") }}
	all := map[string]benchSetup{
		"bare":         {name: "bare fasthttp proxy", addr: o.bare, path: "/reference", pids: pidOf(bare), mallocs: bareMallocs},
		"control":      controlSetup,
		"none":         {name: "hookwall, allow := true", addr: o.gateway, path: "/none", route: "none", pids: pidOf(gw), mallocs: gwMallocs},
		"verify":       {name: "hookwall, verify + allow", addr: o.gateway, path: "/verify", route: "verify", pids: pidOf(gw), mallocs: gwMallocs},
		"reference":    {name: "hookwall, reference", addr: o.gateway, path: "/reference", route: "reference", pids: pidOf(gw), mallocs: gwMallocs},
		"reference-go": {name: "hookwall, reference + Go filter", addr: o.gateway, path: "/reference-go", route: "reference-go", pids: pidOf(gw), mallocs: gwMallocs},
		"queued": {name: "hookwall, reference, queued (SQLite)", addr: o.gateway, path: queuedPath, route: queuedRoute,
			queued: true, admin: adminAPI{o.admin, o.adminToken}, pids: pidOf(gw), mallocs: gwMallocs},
	}
	if pgSetup.name != "" {
		all["queued-pg"] = pgSetup
	}
	for name, s := range all {
		if s.route != "" && s.dlog == nil {
			s.dlog = dlog
			all[name] = s
		}
	}
	for _, p := range peerSetups {
		all[p] = benchSetup{name: peerRowNames[p], path: "/reference"}
	}
	var order []string
	for _, s := range strings.Split(o.setups, ",") {
		if _, ok := all[s]; !ok {
			fmt.Fprintf(stderr, "bench: unknown setup %q\n", s)
			return 2
		}
		order = append(order, s)
		// The baseline right after: the pair runs back to back in every round.
		if hw := all[s]; hw.route != "" && baseGW != nil && s != "queued-pg" {
			b := hw
			b.name += " (baseline)"
			b.addr, b.pids, b.dlog, b.admin = o.baseGateway, pidOf(baseGW), &decisionLog{path: o.baseDecisions}, adminAPI{o.baseAdmin, o.adminToken}
			b.mallocs = func() (uint64, bool) { return scrapeMallocs("http://" + o.baseAdmin + "/metrics") }
			all[s+"@baseline"] = b
			order = append(order, s+"@baseline")
		}
	}
	// The peers that were asked for: each runs when its binaries are installed.
	peerFailed := false
	for _, name := range order {
		need, ok := peerBinaries[name]
		if !ok || all[name].addr != "" || all[name].status != "" {
			continue
		}
		s := all[name]
		var missing []string
		for _, b := range need {
			if _, err := exec.LookPath(b); err != nil {
				missing = append(missing, b)
			}
		}
		if len(missing) > 0 {
			s.status = "not installed"
			fmt.Fprintf(stderr, "bench: %s: %s not on PATH, skipped\n", name, strings.Join(missing, ", "))
			all[name] = s
			continue
		}
		if peerDir == "" {
			if peerDir, err = os.MkdirTemp("", "hookwall-bench-peers"); err == nil {
				err = os.Chmod(peerDir, 0o755) // nginx's worker is unprivileged when its master is root
			}
			if err != nil {
				fmt.Fprintf(stderr, "bench: %v\n", err)
				return 1
			}
		}
		a := peerAddrs{Upstream: o.upstream, Conns: o.conns, Procs: procs, Dir: filepath.Join(peerDir, name)}
		switch name {
		case "nginx":
			a.Listen = benchNginx
		case "caddy":
			a.Listen, a.Metrics = benchCaddy, benchCaddyMetrics
		case "nginx-opa":
			a.Listen, a.OPA = benchNginxOPA, benchOPA
		}
		plan, err := peerPlan(name, a)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", name, err)
			return 1
		}
		var cmds []*exec.Cmd
		for _, p := range plan {
			var c *exec.Cmd
			if c, err = start(p.name, p.argv, p.ready, p.env, true); err != nil {
				break
			}
			cmds = append(cmds, c)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", name, err)
			s.status, peerFailed = "failed to start", true
			all[name] = s
			continue
		}
		s.addr, s.pids = a.Listen, pidOf(cmds...)
		if a.Metrics != "" {
			s.mallocs = func() (uint64, bool) { return scrapeMallocs("http://" + a.Metrics + "/metrics") }
		}
		all[name] = s
	}
	var measured []string
	for _, name := range order {
		if all[name].status == "" {
			measured = append(measured, name)
		}
	}

	body := benchBody(o.body)
	sig := signGitHub([]byte("bench-secret"), body)
	results := map[string][]benchResult{}
	fmt.Fprintf(stdout, "\nGOMAXPROCS=%d: driver %s, %d connections, %v × %d rounds, %d-byte body, %s; load average %s\n",
		procs, o.driver, o.conns, o.d, o.rounds, len(body), placement, loadAverage())
	// One short warm-up per setup (round 0): connections, pools and caches. It is audited
	// like the rounds, not reported.
	voids := 0
	for r := 0; r <= o.rounds; r++ {
		d := o.d
		if r == 0 {
			d = time.Second
		}
		for _, name := range roundOrder(measured, r) {
			var res benchResult
			load := func() (err error) {
				spec := loadSpec{round: r, setup: name, body: body, sig: sig, conns: o.conns, d: d, cpus: loadCPUs, upstream: o.upstream, upstreamPID: upPID}
				if r > 0 {
					spec.watch, spec.watchTo = o.watch, stderr
				}
				res, err = runLoad(ctx, o.driver, all[name], spec, pin)
				return err
			}
			var err error
			if o.pgo != nil && r > 0 && all[name].addr == o.gateway {
				err = o.pgo.during(ctx, d, load)
			} else {
				err = load()
			}
			if err != nil {
				fmt.Fprintf(stderr, "bench: round %d %s: %v\n", r, name, err)
				return 1
			}
			verdict := "ok"
			if res.void != "" {
				verdict, voids = "VOID: "+res.void, voids+1
			}
			fmt.Fprintf(stderr, "  round %d %-13s %8.0f rps  p50 %-9v p99 %-10v non-2xx %d  upstream %s µs/req  %s: %s\n", r, name, res.rps(), res.p50.Round(time.Microsecond), res.p99, res.non2xx+res.errors, perRequest(res.upCPU, res.requests), res.tally, verdict)
			if r > 0 && res.void == "" {
				results[name] = append(results[name], res)
			}
		}
	}
	printBenchReport(stdout, order, all, results)
	if voids > 0 {
		fmt.Fprintf(stdout, "%d run(s) VOID and left out of the report: see the audit lines above\n", voids)
		fmt.Fprintf(stderr, "bench: %d run(s) void\n", voids)
		return 1
	}
	if peerFailed {
		return 1
	}
	return 0
}

// roundOrder is the order the setups run in round r: as given in the warm-up and odd rounds,
// reversed in even ones. Where a setup runs in its round bends its figures (of two gateways
// paired with -baseline, the first read about 1 % more CPU over the upstream's, whichever
// binary it was): over two rounds each pair runs in both orders.
func roundOrder(setups []string, r int) []string {
	if r == 0 || r%2 == 1 {
		return setups
	}
	rev := slices.Clone(setups)
	slices.Reverse(rev)
	return rev
}

func printBenchReport(w io.Writer, order []string, all map[string]benchSetup, results map[string][]benchResult) {
	median := func(rs []benchResult) benchResult {
		s := append([]benchResult(nil), rs...)
		sort.Slice(s, func(i, j int) bool { return s[i].rps() < s[j].rps() })
		return s[len(s)/2]
	}
	// Ratios are paired: each round runs every setup back to back, so a setup's rps and p99
	// are divided by the bare proxy's of the same round, and the median of those is reported
	// with their range. On a shared machine the load moves between rounds far more than
	// within one.
	bare := results["bare"]
	againstBare := func(rs []benchResult, f func(r, b benchResult) float64) []float64 {
		return pairRounds(rs, bare, func(r, b benchResult) (float64, bool) { return f(r, b), b.rps() > 0 && b.p99 > 0 })
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setup\trps\tratio\tratio range\tp50\tp99\tp99 ratio\tCPU µs/req\tCPU ratio\tallocs/req\tupstream µs/req\t")
	for _, name := range order {
		if st := all[name].status; st != "" || len(results[name]) == 0 {
			if st == "" {
				st = "not measured"
			}
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", all[name].name, st)
			continue
		}
		m := median(results[name])
		ratio, span, p99r := "-", "-", "-"
		if xs := againstBare(results[name], func(r, b benchResult) float64 { return r.rps() / b.rps() }); len(xs) > 0 {
			med, lo, hi := spread(xs)
			ratio, span = fmt.Sprintf("%.2f×", med), fmt.Sprintf("%.2f–%.2f", lo, hi)
		}
		if xs := againstBare(results[name], func(r, b benchResult) float64 { return float64(r.p99) / float64(b.p99) }); len(xs) > 0 {
			med, _, _ := spread(xs)
			p99r = fmt.Sprintf("%.2f×", med)
		}
		allocs := "n/a"
		if all[name].mallocs == nil {
			allocs = "-" // not a Go program, or no malloc count to read
		} else if m.mallocsOK && m.requests > 0 {
			allocs = fmt.Sprintf("%.0f", float64(m.mallocs)/float64(m.requests))
		}
		// The bare proxy's CPU per request over the setup's, paired by round: the throughput
		// ratio of the two proxies alone, each bound by its own CPU (the upstream's and the load
		// generator's are not charged).
		cpuRatio := "n/a"
		if xs := pairRounds(results[name], bare, func(r, b benchResult) (float64, bool) {
			return b.cpuPerRequest() / r.cpuPerRequest(), r.cpuPerRequest() > 0 && b.cpuPerRequest() > 0
		}); len(xs) > 0 {
			med, _, _ := spread(xs)
			cpuRatio = fmt.Sprintf("%.2f×", med)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%v\t%v\t%s\t%s\t%s\t%s\t%s\t\n", all[name].name, m.rps(), ratio, span,
			m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond), p99r, perRequest(m.cpu, m.requests), cpuRatio, allocs, perRequest(m.upCPU, m.requests))
	}
	tw.Flush()
	// A cut measured in one run: each setup against its baseline of the same round.
	for _, name := range order {
		base, ok := results[name+"@baseline"]
		if !ok || len(results[name]) == 0 {
			continue
		}
		rps := pairRounds(results[name], base, func(r, b benchResult) (float64, bool) { return r.rps() / b.rps(), b.rps() > 0 })
		cpu := pairRounds(results[name], base, func(r, b benchResult) (float64, bool) {
			return r.cpuPerRequest() / b.cpuPerRequest(), b.rps() > 0 && r.cpuPerRequest() > 0 && b.cpuPerRequest() > 0
		})
		// The setup's CPU over the upstream's in the same run: the core's speed, which moves
		// both, drops out.
		inUp := pairRounds(results[name], base, func(r, b benchResult) (float64, bool) {
			return (float64(r.cpu) / float64(r.upCPU)) / (float64(b.cpu) / float64(b.upCPU)), b.rps() > 0 && r.cpu > 0 && b.cpu > 0 && r.upCPU > 0 && b.upCPU > 0
		})
		fmt.Fprintf(w, "%s against its baseline, paired by round: throughput %s, CPU per request %s, CPU over the upstream's %s\n",
			all[name].name, medianRange(rps), medianRange(cpu), medianRange(inUp))
	}
	// Each gateway setup's tail beside the control's of the same round: its p99 over its p50,
	// divided by the control's. The control spends a chosen CPU a request with no policy, so
	// at 1 the setup's tail has the shape that its CPU a request gives any proxy on the same
	// cores, and above 1 the rest is the setup's own. The throughput against the control's
	// says how far apart their CPU a request was.
	if control := results["control"]; len(control) > 0 {
		for _, name := range order {
			if all[name].route == "" { // the bare proxy, the control, a peer
				continue
			}
			shape := pairRounds(results[name], control, func(r, c benchResult) (float64, bool) {
				return (float64(r.p99) / float64(r.p50)) / (float64(c.p99) / float64(c.p50)), r.p50 > 0 && c.p50 > 0 && c.p99 > 0 && c.rps() > 0
			})
			if len(shape) > 0 {
				rps := pairRounds(results[name], control, func(r, c benchResult) (float64, bool) { return r.rps() / c.rps(), c.rps() > 0 })
				fmt.Fprintf(w, "%s against the control, paired by round: p99 over p50 %s of the control's, at %s its throughput\n",
					all[name].name, medianRange(shape), medianRange(rps))
			}
		}
	}
	printQueuedReport(w, all, results)
}

// pairRounds pairs each run of rs with the run of the same round in with (rounds that with
// lacks are left out) and returns f of the pairs for which f reports its value defined.
func pairRounds(rs, with []benchResult, f func(r, w benchResult) (float64, bool)) []float64 {
	var xs []float64
	for i, r := range rs {
		if i >= len(with) {
			break
		}
		if x, ok := f(r, with[i]); ok {
			xs = append(xs, x)
		}
	}
	return xs
}

// spread returns the median, least and greatest of xs, which must not be empty; xs is sorted.
func spread(xs []float64) (med, lo, hi float64) {
	sort.Float64s(xs)
	return xs[len(xs)/2], xs[0], xs[len(xs)-1]
}

// medianRange formats the median of ratios xs and their range, or "n/a".
func medianRange(xs []float64) string { return medianOf(xs, "%.3f", "×") }

func benchBody(n int) []byte {
	head := `{"ref":"refs/heads/main","repository":{"full_name":"octo/bench"},"pad":"`
	tail := `"}`
	pad := n - len(head) - len(tail)
	if pad < 0 {
		pad = 0
	}
	return []byte(head + strings.Repeat("x", pad) + tail)
}

func signGitHub(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// loadSpec is one run of the load generator against one setup.
type loadSpec struct {
	round    int
	setup    string
	prefix   string // of every delivery id in the run (deliveryPrefix)
	cpus     string // the load generator's cores, "" for any
	upstream string // whose count of served requests audits the run
	// upstreamPID is the upstream's process: its CPU over the run is reported beside the
	// setup's. It serves every setup the same few lines of work a request, so its CPU a
	// request follows the core's speed (and how it is woken), not the setup's work.
	upstreamPID int
	watch       time.Duration // with -watch: print a sample to watchTo this often during the run
	watchTo     io.Writer
	body        []byte
	sig         string
	conns       int
	d           time.Duration
}

// runLoad drives one setup for d, measures the serving process around it, and audits the
// run: the upstream's count and the decision log must match the requests sent.
func runLoad(ctx context.Context, driver string, s benchSetup, spec loadSpec, pin func(string, []string) []string) (benchResult, error) {
	var err error
	if spec.prefix, err = deliveryPrefix(spec.round, spec.setup); err != nil {
		return benchResult{}, err
	}
	hits0, err := upstreamHits(spec.upstream)
	if err != nil {
		return benchResult{}, err
	}
	var hashed0 uint64
	if s.hashes > 0 {
		if hashed0, err = upstreamHits(s.addr); err != nil {
			return benchResult{}, fmt.Errorf("control: %w", err)
		}
	}
	if s.dlog != nil {
		if _, err := s.dlog.since(s.route); err != nil { // skip what earlier runs logged
			return benchResult{}, err
		}
	}
	var qb queuedBefore
	if s.queued {
		if qb, err = queuedStart(s.admin, s.route, spec.upstream); err != nil {
			return benchResult{}, err
		}
	}
	cpu0, up0 := setupCPU(s.pids()), procCPU(spec.upstreamPID)
	stopWatch := watchRun(spec, s)
	var m0 uint64
	var ok0 bool
	if s.mallocs != nil {
		m0, ok0 = s.mallocs()
	}
	var res benchResult
	if driver == "wrk" {
		res, err = runWrk(ctx, s, spec, pin)
	} else {
		res, err = runGoLoad(ctx, s, spec)
	}
	stopWatch()
	if err != nil {
		return res, err
	}
	if cpu1 := setupCPU(s.pids()); cpu0 >= 0 && cpu1 >= cpu0 {
		res.cpu = cpu1 - cpu0
	}
	if up1 := procCPU(spec.upstreamPID); up0 >= 0 && up1 >= up0 {
		res.upCPU = up1 - up0
	}
	if ok0 {
		if m1, ok1 := s.mallocs(); ok1 && m1 >= m0 {
			res.mallocs, res.mallocsOK = m1-m0, true
		}
	}
	res.tally.logged = s.dlog != nil
	res.tally.decisions = map[string]uint64{}
	if s.queued {
		res.tally.queued = &queuedTally{}
		// The workers deliver what the run stored; the audit waits for them, a bounded time.
		if err := queuedSettle(ctx, s.admin, s.route, spec.upstream, qb, 2*time.Minute, res.tally.queued); err != nil {
			return res, err
		}
	}
	if err := settle(ctx, spec.upstream, hits0, s.dlog, s.route, &res.tally); err != nil {
		return res, err
	}
	if s.hashes > 0 {
		// Read once the upstream's count is settled: a request is hashed before it is forwarded.
		hashed1, err := upstreamHits(s.addr)
		if err != nil {
			return res, fmt.Errorf("control: %w", err)
		}
		res.tally.hashes, res.tally.hashed = s.hashes, hashed1-hashed0
	}
	res.void = res.tally.void()
	if res.void == "" && res.non2xx+res.errors > 0 {
		res.void = fmt.Sprintf("%d non-2xx answers or errors", res.non2xx+res.errors)
	}
	return res, nil
}

// runGoLoad is the built-in load generator: conns keep-alive connections, each sending
// signed POSTs back to back, every request with a fresh delivery id.
func runGoLoad(ctx context.Context, s benchSetup, spec loadSpec) (benchResult, error) {
	conns, d, body, sig := spec.conns, spec.d, spec.body, spec.sig
	hc := &fasthttp.HostClient{Addr: s.addr, MaxConns: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	var reqs, non2xx, errs atomic.Uint64
	var seq atomic.Uint64
	lats := make([][]time.Duration, conns)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			local := make([]time.Duration, 0, 1<<16)
			id := make([]byte, 0, len(spec.prefix)+24)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req.Reset()
				req.SetRequestURI("http://" + s.addr + s.path)
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-Hub-Signature-256", sig)
				id = strconv.AppendUint(append(append(id[:0], spec.prefix...), '-'), seq.Add(1), 10)
				req.Header.SetBytesV("X-GitHub-Delivery", id)
				req.SetBodyRaw(body)
				t0 := time.Now()
				err := hc.Do(req, resp)
				local = append(local, time.Since(t0))
				reqs.Add(1)
				switch {
				case err != nil:
					errs.Add(1)
				case resp.StatusCode() < 200 || resp.StatusCode() > 299:
					non2xx.Add(1)
				}
			}
			lats[c] = local
		}(c)
	}
	wg.Wait()
	res := benchResult{requests: reqs.Load(), non2xx: non2xx.Load(), errors: errs.Load(), elapsed: time.Since(start)}
	res.tally.sent = seq.Load()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	res.p50, res.p99 = percentiles(all)
	return res, nil
}

func percentiles(all []time.Duration) (p50, p99 time.Duration) {
	if len(all) == 0 {
		return 0, 0
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all[len(all)*50/100], all[len(all)*99/100]
}

// wrkScript: every thread numbers its requests after the run's prefix and its own index
// (wrk's Lua never seeds math.random, so random ids repeat from one process to the next);
// done() sums what the threads sent, for the audit.
const wrkScript = `
wrk.method = "POST"
wrk.body = %q
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["X-Hub-Signature-256"] = %q
local prefix = %q
local path = %q
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
sent = 0
request = function()
  sent = sent + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. "-t" .. tostring(tid) .. "-" .. tostring(sent)
  return wrk.format(nil, path)
end
done = function(summary, latency, requests)
  -- wrk calls the first thread's request() once before the run, to check the script,
  -- and never sends what it returns.
  local total = -1
  for _, t in ipairs(threads) do
    total = total + t:get("sent")
  end
  io.write(string.format("HW_RESULT %%d %%d %%d %%d %%d %%d %%d\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), total))
end
`

var wrkResult = regexp.MustCompile(`HW_RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)`)

func runWrk(ctx context.Context, s benchSetup, spec loadSpec, pin func(string, []string) []string) (benchResult, error) {
	conns, d := spec.conns, spec.d
	dir, err := os.MkdirTemp("", "hookwall-bench")
	if err != nil {
		return benchResult{}, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(wrkScript, spec.body, spec.sig, spec.prefix, s.path)), 0o600); err != nil {
		return benchResult{}, err
	}
	argv := pin(spec.cpus, []string{"wrk", "-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "-s", script, "http://" + s.addr + s.path})
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return benchResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	m := wrkResult.FindSubmatch(out)
	if m == nil {
		return benchResult{}, fmt.Errorf("wrk: no result in output:\n%s", out)
	}
	n := func(i int) uint64 { v, _ := strconv.ParseUint(string(m[i]), 10, 64); return v }
	return benchResult{
		requests: n(1), elapsed: time.Duration(n(2)) * time.Microsecond,
		non2xx: n(3), errors: n(4),
		p50: time.Duration(n(5)) * time.Microsecond, p99: time.Duration(n(6)) * time.Microsecond,
		tally: tally{sent: n(7)},
	}, nil
}

// childPID is the PID of the serving process: taskset execs the program, so it is the child.
func childPID(c *exec.Cmd) int { return c.Process.Pid }

// setupCPU is the CPU time of the setup's processes and their children, or -1 when one is gone.
func setupCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		c := treeCPU(pid)
		if c < 0 {
			return -1
		}
		total += c
	}
	return total
}

// signalBenchProc signals a started server, or its whole process group when it has one.
func signalBenchProc(c *exec.Cmd, sig syscall.Signal) error {
	if c.Process == nil {
		return nil
	}
	if c.SysProcAttr != nil && c.SysProcAttr.Setpgid {
		return syscall.Kill(-c.Process.Pid, sig)
	}
	return c.Process.Signal(sig)
}

// procCPU returns the user+system CPU time of pid from /proc, or -1.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticksPerSecond
}

// scrapeMallocs reads go_memstats_mallocs_total from a Prometheus text endpoint.
func scrapeMallocs(url string) (uint64, bool) {
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI(url)
	if err := fasthttp.DoTimeout(&req, &resp, 2*time.Second); err != nil || resp.StatusCode() != 200 {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(resp.Body()))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "go_memstats_mallocs_total ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "go_memstats_mallocs_total ")), 64)
			return uint64(v), err == nil
		}
	}
	return 0, false
}

func waitTCP(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// buildHookwall builds the product binary into dir: the benchmark measures the command users
// run, with its own runtime settings (GOGC), not a copy of its setup.
func buildHookwall(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "hookwall")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/hookwall/hookwall/cmd/hookwall").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building hookwall (run from inside the module, or pass -hookwall): %w\n%s", err, out)
	}
	return bin, nil
}

// cmdNode runs one of the benchmark's helper servers, started by the benchmark itself:
//
//	node upstream ADDR               answers 200 "ok" to everything
//	node bare ADDR UPSTREAM [HASHES] a bare fasthttp reverse proxy, the baseline; with HASHES,
//	                                 the control: it computes SHA-256 of each request's body
//	                                 HASHES times before forwarding it
func cmdNode(ctx context.Context, args []string, _, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: bench node upstream ADDR | bare ADDR UPSTREAM [HASHES]")
		return 2
	}
	var h fasthttp.RequestHandler
	switch args[0] {
	case "upstream":
		// It counts what it served, for the audit of every run (hitsPath reads the count).
		// Queued deliveries are counted by id as well (idsPath reads the ledger).
		var hits atomic.Uint64
		ids := &idLedger{seen: map[string]struct{}{}}
		h = func(c *fasthttp.RequestCtx) {
			switch string(c.Path()) {
			case hitsPath:
				c.SetBodyString(strconv.FormatUint(hits.Load(), 10))
				return
			case idsPath:
				c.SetBodyString(ids.String())
				return
			}
			hits.Add(1)
			if id := c.Request.Header.Peek("Hookwall-Delivery-Id"); len(id) > 0 {
				ids.add(id, time.Now())
			}
			c.SetBodyString("ok")
		}
	case "bare":
		if len(args) < 3 {
			fmt.Fprintln(stderr, "usage: bench node bare ADDR UPSTREAM [HASHES]")
			return 2
		}
		hashes := 0
		if len(args) > 3 {
			n, err := strconv.Atoi(args[3])
			if err != nil || n < 0 || n > maxControlHashes {
				fmt.Fprintf(stderr, "node bare: HASHES %q: want 0 to %d\n", args[3], maxControlHashes)
				return 2
			}
			hashes = n
		}
		// Every hash computed is counted, for the audit (hitsPath reads the count): a control
		// that skipped its work would be void, not merely fast.
		var hashed atomic.Uint64
		// Forwarded as received, as hookwall forwards it: no User-Agent of fasthttp's where
		// the load generator sent none.
		hc := &fasthttp.HostClient{Addr: args[2], MaxConns: 4096, NoDefaultUserAgentHeader: true}
		h = func(c *fasthttp.RequestCtx) {
			switch string(c.Path()) {
			case hitsPath:
				c.SetBodyString(strconv.FormatUint(hashed.Load(), 10))
				return
			case "/__mallocs":
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(c, "go_memstats_mallocs_total %d\n", ms.Mallocs)
				return
			case "/__profile", "/__trace":
				// A CPU profile or a runtime trace of the baseline (or the control) under
				// load, to set beside hookwall's (/debug/pprof/profile and /debug/pprof/trace
				// on its admin listener): ?seconds=N, default 5.
				secs, err := strconv.Atoi(string(c.QueryArgs().Peek("seconds")))
				if err != nil || secs < 1 || secs > 60 {
					secs = 5
				}
				start, stop := pprof.StartCPUProfile, pprof.StopCPUProfile
				if string(c.Path()) == "/__trace" {
					start, stop = trace.Start, trace.Stop
				}
				if err := start(c); err != nil {
					c.Error(err.Error(), fasthttp.StatusConflict)
					return
				}
				time.Sleep(time.Duration(secs) * time.Second)
				stop()
				return
			}
			c.Request.Header.Del("Connection")
			for range hashes {
				sha256.Sum256(c.Request.Body())
				hashed.Add(1)
			}
			if err := hc.Do(&c.Request, &c.Response); err != nil {
				c.Error("bad gateway", fasthttp.StatusBadGateway)
			}
		}
	default:
		fmt.Fprintf(stderr, "node: unknown role %q\n", args[0])
		return 2
	}
	srv := &fasthttp.Server{Handler: h, Name: "bench-" + args[0]}
	go func() { <-ctx.Done(); _ = srv.Shutdown() }()
	if err := srv.ListenAndServe(args[1]); err != nil {
		fmt.Fprintf(stderr, "node: %v\n", err)
		return 1
	}
	return 0
}
