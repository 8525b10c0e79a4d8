package redis

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Operation names of the shared blocks (engine/watch's Fleet), passed to Options.Observe.
const (
	OpBlockPut     = "block_put"
	OpBlockDelete  = "block_delete"
	OpBlockVersion = "block_version"
	OpBlockList    = "block_list"
)

func (s *Store) blocksKey() string  { return s.prefix + "watch:blocks" }
func (s *Store) versionKey() string { return s.prefix + "watch:blocks:v" }

// PutBlock stores a block record under source and bumps the version, in one transaction.
func (s *Store) PutBlock(ctx context.Context, source string, record []byte) error {
	return s.blockTx(ctx, OpBlockPut, func(p goredis.Pipeliner) { p.HSet(ctx, s.blocksKey(), source, record) })
}

// DeleteBlock removes source's block record and bumps the version, in one transaction. It
// reports whether there was a record.
func (s *Store) DeleteBlock(ctx context.Context, source string) (bool, error) {
	var del *goredis.IntCmd
	err := s.blockTx(ctx, OpBlockDelete, func(p goredis.Pipeliner) { del = p.HDel(ctx, s.blocksKey(), source) })
	return err == nil && del.Val() > 0, err
}

func (s *Store) blockTx(ctx context.Context, op string, change func(goredis.Pipeliner)) error {
	if s.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		change(p)
		// A random step, not 1: a Redis that lost its data (restarted without persistence,
		// flushed) counts again from 0, and a gateway that last saw version 2 would take two
		// new writes for no change at all and not read the blocks until its full resync.
		p.IncrBy(ctx, s.versionKey(), 1+rand.Int64N(1<<31))
		return nil
	})
	return s.done(op, start, err)
}

// BlocksVersion returns the counter every PutBlock and DeleteBlock moves on by a random step
// (0 before the first): equal versions mean no change, even across a loss of Redis's data.
func (s *Store) BlocksVersion(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	v, err := s.c.Get(ctx, s.versionKey()).Int64()
	if errors.Is(err, goredis.Nil) {
		v, err = 0, nil
	}
	return v, s.done(OpBlockVersion, start, err)
}

// Blocks returns every block record by source.
func (s *Store) Blocks(ctx context.Context) (map[string][]byte, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	all, err := s.c.HGetAll(ctx, s.blocksKey()).Result()
	if err = s.done(OpBlockList, start, err); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(all))
	for k, v := range all {
		out[k] = []byte(v)
	}
	return out, nil
}
