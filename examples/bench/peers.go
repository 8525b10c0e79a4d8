package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// The bare proxy's and the control's default listen addresses (-bare, -control), and the
// peers': other proxies measured by the benchmark with the same upstream, load generator and
// pinning, when their binaries are installed. Fixed loopback ports like hookwall's and the
// upstream's (examples/bench/gateway.toml), each its own.
const (
	benchBare         = "127.0.0.1:18082"
	benchControl      = "127.0.0.1:18086"
	benchNginx        = "127.0.0.1:18083"
	benchCaddy        = "127.0.0.1:18084"
	benchNginxOPA     = "127.0.0.1:18085"
	benchCaddyMetrics = "127.0.0.1:18094"
	benchOPA          = "127.0.0.1:18181"
)

// peerSetups are the optional setups, in the order the help lists them.
var peerSetups = []string{"nginx", "caddy", "nginx-opa"}

// peerBinaries are the programs a peer setup needs on PATH.
var peerBinaries = map[string][]string{
	"nginx":     {"nginx"},
	"caddy":     {"caddy"},
	"nginx-opa": {"nginx", "opa"},
}

// peerRowNames are the report's names of the peer setups.
var peerRowNames = map[string]string{
	"nginx":     "nginx",
	"caddy":     "Caddy",
	"nginx-opa": "nginx + auth_request → OPA",
}

// peerAddrs are the addresses a peer's configuration is rendered with.
type peerAddrs struct {
	Listen   string // the peer's public listener
	Upstream string // the benchmark upstream
	OPA      string // nginx-opa: the OPA server
	Metrics  string // caddy: its Prometheus endpoint, for the Go runtime's malloc count
	Conns    int    // the load generator's connections: the size of the upstream keep-alive pools
	Procs    int    // the cores the servers get: nginx's workers
	Dir      string // the peer's own directory: config, pid file, temp dirs
}

// peerProc is one process of a peer setup.
type peerProc struct {
	name  string
	argv  []string
	env   []string
	ready string // the address it listens on once started
}

// nginxConf: one worker per server core (the master only supervises them), no access log, keep-alive to the
// upstream, every path under Dir so it runs without root's paths. Request bodies up to
// 1 MiB stay in memory, like hookwall's max_body in examples/bench/gateway.toml. nginx
// closes a client connection after keepalive_requests (default 1000); fasthttp and
// hookwall do not, so the limit is lifted for both sides.
const nginxConf = `# nginx as a peer of hookwall bench ({{.Setup}}); rendered by examples/bench.
worker_processes {{.Procs}};
daemon off;
pid {{.Dir}}/nginx.pid;
error_log stderr warn;

events {
    worker_connections {{.WorkerConns}};
}

http {
    access_log off;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    client_max_body_size 1m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;

    upstream hw_upstream {
        server {{.Upstream}};
        keepalive {{.Conns}};
        keepalive_requests 1000000;
    }
{{- if .OPA}}

    upstream hw_opa {
        server {{.OPA}};
        keepalive {{.Conns}};
        keepalive_requests 1000000;
    }
{{- end}}

    server {
        listen {{.Listen}};

        location / {
{{- if .OPA}}
            auth_request /_opa;
{{- end}}
            proxy_pass http://hw_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
{{- if .OPA}}

        # OPA's default decision (POST /, data.system.main): 200 with the decision when the
        # policy allows, 404 when it is undefined, which is answered 403 here.
        location = /_opa {
            internal;
            proxy_pass http://hw_opa/;
            proxy_method POST;
            proxy_http_version 1.1;
            proxy_pass_request_headers off;
            proxy_pass_request_body off;
            proxy_set_header Connection "";
            proxy_set_header Content-Type application/json;
            proxy_set_body '{"method":"$request_method","path":"$uri","event":"$http_x_github_event"}';
            proxy_intercept_errors on;
            error_page 404 = @opa_deny;
        }

        location @opa_deny {
            return 403;
        }
{{- end}}
    }
}
`

// caddyfile: admin API and automatic HTTPS off, errors only in the log, keep-alive pool to
// the upstream as deep as the load generator's connections. A second site serves the
// Prometheus metrics (Caddy 2.6 collects its HTTP metrics whether or not they are served),
// which carry the Go runtime's malloc count.
const caddyfile = `{
	admin off
	auto_https off
	log {
		output stderr
		level ERROR
	}
}

http://:{{.ListenPort}} {
	bind {{.ListenHost}}
	reverse_proxy {{.Upstream}} {
		transport http {
			keepalive_idle_conns_per_host {{.Conns}}
		}
	}
}

http://:{{.MetricsPort}} {
	bind {{.MetricsHost}}
	metrics
}
`

// opaPolicy is the nginx-opa setup's policy: OPA's default decision (data.system.main),
// defined for the events hookwall's reference route allows; undefined (404) otherwise.
const opaPolicy = `package system

main if input.event in {"push", "ping", "pull_request", "release"}
`

var (
	nginxTmpl = template.Must(template.New("nginx.conf").Parse(nginxConf))
	caddyTmpl = template.Must(template.New("Caddyfile").Parse(caddyfile))
)

type peerTmplData struct {
	peerAddrs
	Setup                    string
	WorkerConns              int
	ListenHost, ListenPort   string
	MetricsHost, MetricsPort string
}

func renderPeer(tmpl *template.Template, setup string, a peerAddrs) (string, error) {
	d := peerTmplData{peerAddrs: a, Setup: setup, WorkerConns: max(1024, 4*a.Conns)}
	if d.Conns < 1 {
		d.Conns = 1
	}
	if d.Procs < 1 {
		d.Procs = 1
	}
	if a.Listen != "" {
		i := strings.LastIndexByte(a.Listen, ':')
		d.ListenHost, d.ListenPort = a.Listen[:i], a.Listen[i+1:]
	}
	if a.Metrics != "" {
		i := strings.LastIndexByte(a.Metrics, ':')
		d.MetricsHost, d.MetricsPort = a.Metrics[:i], a.Metrics[i+1:]
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// peerPlan writes the configuration of a peer setup under a.Dir and returns its processes,
// in the order they are to be started. The directory is made traversable: nginx's worker
// runs as an unprivileged user when the master is root, and buffers to its temp dirs there.
func peerPlan(setup string, a peerAddrs) ([]peerProc, error) {
	if err := os.MkdirAll(a.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(a.Dir, 0o755); err != nil {
		return nil, err
	}
	write := func(name, content string) (string, error) {
		p := filepath.Join(a.Dir, name)
		return p, os.WriteFile(p, []byte(content), 0o644)
	}
	// writeConf renders the setup's config from tmpl into the file name.
	writeConf := func(tmpl *template.Template, name string) (string, error) {
		conf, err := renderPeer(tmpl, setup, a)
		if err != nil {
			return "", err
		}
		return write(name, conf)
	}
	switch setup {
	case "nginx", "nginx-opa":
		var procs []peerProc
		if setup == "nginx-opa" {
			policy, err := write("policy.rego", opaPolicy)
			if err != nil {
				return nil, err
			}
			procs = append(procs, peerProc{
				name: "opa",
				argv: []string{"opa", "run", "--server", "--addr", a.OPA, "--skip-version-check",
					"--log-level", "error", "--log-level-request", "debug", "--shutdown-grace-period", "1", policy},
				ready: a.OPA,
			})
		} else {
			a.OPA = ""
		}
		path, err := writeConf(nginxTmpl, "nginx.conf")
		if err != nil {
			return nil, err
		}
		return append(procs, peerProc{name: setup, argv: nginxArgv(a.Dir, path), ready: a.Listen}), nil
	case "caddy":
		path, err := writeConf(caddyTmpl, "Caddyfile")
		if err != nil {
			return nil, err
		}
		return []peerProc{{
			name:  "caddy",
			argv:  []string{"caddy", "run", "--config", path, "--adapter", "caddyfile"},
			env:   caddyEnv(a.Dir),
			ready: a.Listen,
		}}, nil
	}
	return nil, fmt.Errorf("unknown peer setup %q", setup)
}

// nginxArgv runs nginx in the foreground with its prefix in dir; -e stderr keeps it from
// opening the compiled-in error log before it reads the config.
func nginxArgv(dir, conf string) []string {
	return []string{"nginx", "-e", "stderr", "-p", dir, "-c", conf}
}

// caddyEnv keeps Caddy's data and config directories (autosave.json) in dir.
func caddyEnv(dir string) []string {
	return []string{"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
}

// treeCPU returns the user+system CPU time of pid and all its descendants (nginx's master
// and worker), or -1 when pid is gone.
func treeCPU(pid int) time.Duration {
	if procCPU(pid) < 0 {
		return -1
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return procCPU(pid)
	}
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := procPPID(p); pp > 0 {
			parent[p] = pp
		}
	}
	in := func(p int) bool {
		for i := 0; p > 1 && i < 64; i++ {
			if p == pid {
				return true
			}
			p = parent[p]
		}
		return false
	}
	var total time.Duration
	for p := range parent {
		if p != pid && in(p) {
			if c := procCPU(p); c > 0 {
				total += c
			}
		}
	}
	if c := procCPU(pid); c > 0 {
		total += c
	}
	return total
}

// procPPID returns the parent PID of pid from /proc, or -1.
func procPPID(pid int) int {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 2 {
		return -1
	}
	pp, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return pp
}
