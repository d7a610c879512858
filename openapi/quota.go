package openapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update

// UserLock serializes the quota check and the create of one user's stores
// across every API replica, so N replicas racing never exceed the quota.
type UserLock interface {
	// Lock takes the user's lock. It returns the stores created under the
	// lock recently — which this replica's cache may not hold yet — and the
	// release, which records the store created meanwhile ("" for none).
	Lock(ctx context.Context, user string) (recent []string, unlock func(created string), err error)
}

// LeaseLock is a UserLock kept in one coordination.k8s.io Lease per user in
// the platform namespace. Taking it is an optimistic-concurrency update of
// the Lease (only one writer of a resourceVersion wins); the holder renews it
// for as long as it holds it, and a holder that crashed is taken over once
// TTL has passed without a renewal. The Lease also remembers the stores
// created in the last RecentWindow, so a replica whose cache has not seen
// another replica's create still counts it.
type LeaseLock struct {
	Client    client.Client
	Namespace string
	// Holder names this replica in the Lease, for whoever inspects it.
	Holder       string
	TTL          time.Duration
	RecentWindow time.Duration
}

// recentAnnotation holds the recent creates as JSON: [{"name":..,"at":..}].
const recentAnnotation = "storefleet.dev/recent-creates"

type recentCreate struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

func leaseName(user string) string {
	sum := sha256.Sum256([]byte(user))
	return "storefleet-quota-" + hex.EncodeToString(sum[:10])
}

func (l *LeaseLock) ttl() time.Duration {
	if l.TTL > 0 {
		return l.TTL
	}
	return 10 * time.Second
}

func (l *LeaseLock) Lock(ctx context.Context, user string) ([]string, func(string), error) {
	key := client.ObjectKey{Namespace: l.Namespace, Name: leaseName(user)}
	wait := 2 * time.Millisecond
	for {
		lease, err := l.tryTake(ctx, key)
		if err != nil {
			return nil, nil, fmt.Errorf("taking the quota lease %s: %w", key, err)
		}
		if lease != nil {
			recent := l.recent(lease)
			names := make([]string, len(recent))
			for i, r := range recent {
				names[i] = r.Name
			}
			h := l.keep(ctx, lease)
			return names, func(created string) { l.release(ctx, h.stop(), recent, created) }, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(wait + rand.N(wait)):
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// tryTake returns the Lease when this call took it, nil when another holder
// has it (or won the race for it).
func (l *LeaseLock) tryTake(ctx context.Context, key client.ObjectKey) (*coordinationv1.Lease, error) {
	now := metav1.NewMicroTime(time.Now())
	var lease coordinationv1.Lease
	err := l.Client.Get(ctx, key, &lease)
	if apierrors.IsNotFound(err) {
		lease = coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
		l.hold(&lease, now)
		err = l.Client.Create(ctx, &lease)
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return &lease, err
	}
	if err != nil {
		return nil, err
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" && !expired(&lease, now.Time) {
		return nil, nil
	}
	l.hold(&lease, now)
	err = l.Client.Update(ctx, &lease)
	if apierrors.IsConflict(err) {
		return nil, nil
	}
	return &lease, err
}

func (l *LeaseLock) hold(lease *coordinationv1.Lease, now metav1.MicroTime) {
	lease.Spec.HolderIdentity = ptr.To(l.Holder)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32((l.ttl() + time.Second - 1) / time.Second))
	lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
}

func expired(lease *coordinationv1.Lease, now time.Time) bool {
	if lease.Spec.RenewTime == nil || lease.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return now.After(lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second))
}

// recent reads the Lease's recent creates still inside the window.
func (l *LeaseLock) recent(lease *coordinationv1.Lease) []recentCreate {
	window := l.RecentWindow
	if window <= 0 {
		window = time.Minute
	}
	var all, kept []recentCreate
	_ = json.Unmarshal([]byte(lease.Annotations[recentAnnotation]), &all)
	for _, r := range all {
		if time.Since(r.At) < window {
			kept = append(kept, r)
		}
	}
	return kept
}

// held is a taken Lease kept renewed until stop: the create it guards may
// take longer than the TTL (a commit and a pull request on a slow forge), and
// a Lease left to expire meanwhile would let another replica count the
// user's stores before this create shows anywhere.
type held struct {
	// lease is written by the renewing goroutine only, read after it ended.
	lease *coordinationv1.Lease
	done  chan struct{}
	ended chan struct{}
}

// keep renews the Lease every third of the TTL until stop, the end of ctx (a
// replica that died or a request given up, whose Lease then expires as a
// crashed holder's does) or the Lease being taken over.
func (l *LeaseLock) keep(ctx context.Context, lease *coordinationv1.Lease) *held {
	h := &held{lease: lease, done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(h.ended)
		t := time.NewTicker(max(l.ttl()/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !l.renew(ctx, h) {
				return
			}
		}
	}()
	return h
}

func (l *LeaseLock) renew(ctx context.Context, h *held) bool {
	lease := h.lease.DeepCopy()
	lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
	rctx, cancel := context.WithTimeout(ctx, l.ttl())
	defer cancel()
	switch err := l.Client.Update(rctx, lease); {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		// Taken over (or removed): it is no longer ours to renew.
		return false
	case err != nil:
		// A passing API server error: the next tick tries again, well
		// within the TTL.
		return true
	}
	h.lease = lease
	return true
}

// stop ends the renewals and returns the Lease as last written.
func (h *held) stop() *coordinationv1.Lease {
	close(h.done)
	<-h.ended
	return h.lease
}

// release frees the Lease and records the store created under it. It runs
// even when the request was cancelled: the user's next create must not wait
// for the TTL. A conflict means the Lease was taken over after expiring;
// then there is nothing left to release.
func (l *LeaseLock) release(ctx context.Context, lease *coordinationv1.Lease, recent []recentCreate, created string) {
	if created != "" {
		recent = append(recent, recentCreate{Name: created, At: time.Now().UTC()})
	}
	data, _ := json.Marshal(recent)
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[recentAnnotation] = string(data)
	lease.Spec.HolderIdentity = ptr.To("")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = l.Client.Update(ctx, lease)
}
