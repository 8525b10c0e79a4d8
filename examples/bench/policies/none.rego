# A route with no checks: what hookwall's pipeline costs without a policy that does work.
package bench.none

allow := true
