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

// blocksPage is the COUNT of each HSCAN that Blocks reads the records with.
const blocksPage = 1000

// Blocks returns every block record by source. It reads them a page at a time (HSCAN), each
// page within Timeout, for as long as ctx lets it: one HGETALL of a large table (max_blocks
// goes up to 2^20, and a fleet's gateways each add their own) would have to come back whole
// within Timeout, which a few tens of thousands of records already do not, and would hold
// Redis' one thread, and every gateway's Admit behind it, for as long as it takes to answer.
// A record present for the whole read is returned; one put or deleted during the read may or
// may not be, and the change moves BlocksVersion on, so a caller that read the version
// before reads the blocks again.
func (s *Store) Blocks(ctx context.Context) (map[string][]byte, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	start := time.Now()
	out := make(map[string][]byte)
	var cursor uint64
	for {
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		kv, next, err := s.c.HScan(cctx, s.blocksKey(), cursor, "", blocksPage).Result()
		cancel()
		if err != nil {
			return nil, s.done(OpBlockList, start, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = []byte(kv[i+1])
		}
		if cursor = next; cursor == 0 {
			return out, s.done(OpBlockList, start, nil)
		}
	}
}
