import type { StoreSummary } from "../api/types";

// StoreLinks are the storefront and admin of a Ready store.
export function StoreLinks({ store }: { store: Pick<StoreSummary, "ready" | "urls"> }) {
  if (!store.ready || !store.urls) return <span className="muted">—</span>;
  return (
    <span className="links">
      {store.urls.storefront ? (
        <a href={store.urls.storefront} target="_blank" rel="noreferrer">
          Storefront
        </a>
      ) : null}
      {store.urls.admin ? (
        <a href={store.urls.admin} target="_blank" rel="noreferrer">
          Admin
        </a>
      ) : null}
    </span>
  );
}
