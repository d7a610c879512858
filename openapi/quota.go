package openapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;delete

// UserLock serializes the quota check and the create of one user's stores
// across every API replica, so N replicas racing never exceed the quota.
type UserLock interface {
	Lock(ctx context.Context, user string) (unlock func(), err error)
}

// LeaseLock is a UserLock held as a coordination.k8s.io Lease per user in the
// platform namespace: creating the Lease is the atomic step (the API server
// refuses a second create). A Lease left behind by a crashed replica expires
// after TTL and is taken over.
type LeaseLock struct {
	Client    client.Client
	Namespace string
	// Holder names this replica in the Lease, for whoever inspects it.
	Holder string
	TTL    time.Duration
}

func leaseName(user string) string {
	sum := sha256.Sum256([]byte(user))
	return "storefleet-quota-" + hex.EncodeToString(sum[:10])
}

func (l *LeaseLock) Lock(ctx context.Context, user string) (func(), error) {
	ttl := l.TTL
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	name := leaseName(user)
	wait := 2 * time.Millisecond
	for {
		now := metav1.NewMicroTime(time.Now())
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: l.Namespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(l.Holder),
				LeaseDurationSeconds: ptr.To(int32((ttl + time.Second - 1) / time.Second)),
				AcquireTime:          &now,
				RenewTime:            &now,
			},
		}
		err := l.Client.Create(ctx, lease)
		if err == nil {
			uid := lease.UID
			return func() {
				// Released even when the request was cancelled: the
				// next create of this user must not wait for the TTL.
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = l.Client.Delete(dctx, lease, client.Preconditions{UID: &uid})
			}, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("taking the quota lease %s/%s: %w", l.Namespace, name, err)
		}
		l.breakExpired(ctx, name)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait + rand.N(wait)):
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// breakExpired deletes the user's Lease when its holder let it expire.
func (l *LeaseLock) breakExpired(ctx context.Context, name string) {
	var held coordinationv1.Lease
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: l.Namespace, Name: name}, &held); err != nil {
		return
	}
	if held.Spec.RenewTime == nil || held.Spec.LeaseDurationSeconds == nil {
		return
	}
	expiry := held.Spec.RenewTime.Add(time.Duration(*held.Spec.LeaseDurationSeconds) * time.Second)
	if time.Now().After(expiry) {
		_ = l.Client.Delete(ctx, &held, client.Preconditions{UID: &held.UID, ResourceVersion: &held.ResourceVersion})
	}
}
