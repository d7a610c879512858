package openapi

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter is a token bucket per caller (golang.org/x/time/rate):
// PerMinute tokens a minute, a burst of as many. Buckets that have been full
// for a while are dropped, so memory follows the active callers.
type rateLimiter struct {
	perMinute int
	mu        sync.Mutex
	buckets   map[rateKey]*bucket
	lastSweep time.Time
}

// rateKey names whose tokens a request spends: an authenticated user's own,
// whatever address or proxy it comes through, or — for a request that did not
// authenticate — its client address's.
type rateKey struct {
	user string
	addr netip.Prefix
}

// userRateKey is the bucket of an authenticated user.
func userRateKey(user string) rateKey { return rateKey{user: user} }

// addressRateKey is the bucket of an unauthenticated client. An IPv6 client
// gets a whole /64 (one subscriber's network, which it may hop around in at
// will); an IPv4 client its own address.
func addressRateKey(addr netip.Addr) rateKey {
	addr = addr.Unmap()
	bits := addr.BitLen()
	if addr.Is6() {
		bits = 64
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		// No address at all (a request that never came over IP): one
		// bucket for all of those.
		return rateKey{}
	}
	return rateKey{addr: p}
}

type bucket struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

func newRateLimiter(perMinute int) *rateLimiter {
	return &rateLimiter{perMinute: perMinute, buckets: map[rateKey]*bucket{}}
}

// allow takes a token for key, or says how long until one is available.
func (l *rateLimiter) allow(key rateKey, now time.Time) (bool, time.Duration) {
	if l.perMinute <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{limiter: rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMinute)), l.perMinute)}
		l.buckets[key] = b
	}
	b.lastSeen = now
	r := b.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets idle for a minute: they have refilled completely, so
// forgetting them changes nothing for their caller.
func (l *rateLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	for key, b := range l.buckets {
		if now.Sub(b.lastSeen) >= time.Minute {
			delete(l.buckets, key)
		}
	}
}
