import { useQuery } from "@tanstack/react-query";
import { Link } from "wouter";
import { listStores } from "../api/client";
import { describeError } from "../api/problem";
import type { StoreSummary } from "../api/types";
import { useFleetStream } from "../events";
import { age } from "../pipeline";
import { CreateStoreForm } from "./CreateStoreForm";
import { PhaseBadge } from "./PhaseBadge";
import { RuntimeBadge } from "./RuntimeBadge";
import { LiveIndicator } from "./LiveIndicator";
import { StoreLinks } from "./StoreLinks";
import { useNow } from "../useNow";

export function StoresPage({ user, plans }: { user: string; plans?: string[] }) {
  const stores = useQuery({ queryKey: ["stores", user], queryFn: listStores });
  const live = useFleetStream(user);
  const now = useNow();
  const items = stores.data?.items ?? [];

  return (
    <div className="stores-layout">
      <section className="panel" aria-labelledby="stores-title">
        <div className="panel-head">
          <h1 id="stores-title">Your stores</h1>
          <LiveIndicator state={live} />
        </div>
        {stores.error ? (
          <p className="form-error" role="alert">
            {describeError(stores.error)}
          </p>
        ) : stores.isPending ? (
          <p className="muted">Loading…</p>
        ) : items.length === 0 ? (
          <div className="empty" data-testid="empty-state">
            <p>
              <strong>No stores yet.</strong>
            </p>
            <p>
              Pick a name in <em>New store</em> and press <em>Create store</em>: storefleet gives it its own
              namespace, database and storefront, and you can watch every step here.
            </p>
          </div>
        ) : (
          <table className="stores cards">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Engine</th>
                <th scope="col">Plan</th>
                <th scope="col">Phase</th>
                <th scope="col">Links</th>
                <th scope="col">Age</th>
              </tr>
            </thead>
            <tbody>
              {items.map((s) => (
                <StoreRow key={s.name} store={s} now={now} />
              ))}
            </tbody>
          </table>
        )}
      </section>
      <CreateStoreForm user={user} plans={plans} />
    </div>
  );
}

function StoreRow({ store, now }: { store: StoreSummary; now: number }) {
  return (
    <tr data-store={store.name}>
      <th scope="row" data-label="Name">
        <Link href={`/stores/${store.name}`}>{store.name}</Link>
      </th>
      <td data-label="Engine">{store.engine === "woocommerce" ? "WooCommerce" : "MedusaJS"}</td>
      <td data-label="Plan">{store.plan}</td>
      <td data-label="Phase">
        <PhaseBadge phase={store.phase} />
        <RuntimeBadge runtime={store.runtime} />
      </td>
      <td data-label="Links">
        <StoreLinks store={store} />
      </td>
      <td data-label="Age">
        <time dateTime={store.createdAt} title={new Date(store.createdAt).toLocaleString()}>
          {age(store.createdAt, now)}
        </time>
      </td>
    </tr>
  );
}
