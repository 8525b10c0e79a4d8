package main

import (
	"context"
	"errors"
	"io"

	"github.com/hookwall/hookwall/engine/delivery/postgres/pgcluster"
)

// benchPostgres is a throwaway PostgreSQL cluster the benchmark started for the queued-pg
// setup.
type benchPostgres struct {
	url  string
	pid  int
	stop func()
}

// startBenchPostgres starts a private cluster (pgcluster) with PostgreSQL's durable
// defaults (fsync on): the store is measured as a gateway would use it. prefix (taskset)
// runs it on the servers' cores. Without initdb it returns nil and why. The error of a
// cluster that did not start carries its log, so the last argument (the caller's stderr)
// is no longer written to.
func startBenchPostgres(ctx context.Context, prefix []string, _ io.Writer) (*benchPostgres, string, error) {
	c, err := pgcluster.Start(ctx, pgcluster.Options{Durable: true, Prefix: prefix})
	if errors.Is(err, pgcluster.ErrNoInitdb) {
		return nil, "initdb not installed", nil
	}
	if err != nil {
		return nil, "", err
	}
	return &benchPostgres{url: c.URL, pid: c.PID, stop: c.Stop}, "", nil
}
