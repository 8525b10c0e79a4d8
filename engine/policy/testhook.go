package policy

import (
	"context"
	"fmt"
)

// ReplaceCompiledForTest makes q's compiled evaluator the one compiled from sources (the
// query's package, written differently), while topdown keeps q's own policy: a deliberately
// wrong compiled evaluator, so that tests can prove the cross-check notices one. It is for
// tests only. It must be called before q serves evaluations, or with a synchronisation that
// orders it before them (such as acquiring and releasing the snapshot that holds q).
func (q *Query) ReplaceCompiledForTest(ctx context.Context, sources map[string]string) error {
	set, err := LoadModules(ctx, sources, nil, Options{})
	if err != nil {
		return err
	}
	p, why := set.compileFast(q.pkg, q.allowOnly)
	if p == nil {
		return fmt.Errorf("policy %s: the replacement is not compiled: %s", q.pkg, why)
	}
	q.fast = p
	return nil
}
