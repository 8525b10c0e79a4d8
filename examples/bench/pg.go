package main

import (
	"context"
	"errors"

	"github.com/hookwall/hookwall/engine/delivery/postgres/pgcluster"
)

// startBenchPostgres starts a private cluster (pgcluster) for the queued-pg setup with
// PostgreSQL's durable defaults (fsync on): the store is measured as a gateway would use
// it. prefix (taskset) runs it on the servers' cores. Without initdb it returns nil and
// why. The error of a cluster that did not start carries its log.
func startBenchPostgres(ctx context.Context, prefix []string) (*pgcluster.Cluster, string, error) {
	c, err := pgcluster.Start(ctx, pgcluster.Options{Durable: true, Prefix: prefix})
	if errors.Is(err, pgcluster.ErrNoInitdb) {
		return nil, "initdb not installed", nil
	}
	if err != nil {
		return nil, "", err
	}
	return c, "", nil
}
