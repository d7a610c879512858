import { useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { createAdminInvite } from "../api/client";
import { describeError } from "../api/problem";
import type { Store } from "../api/types";

// AdminAccess gets the owner into the store's Medusa admin: a one-time link
// (no password ever passes through storefleet), shown here once and nowhere
// else. Asking again rotates it.
export function AdminAccess({ store, user }: { store: Store; user: string }) {
  const [email, setEmail] = useState(user.includes("@") ? user : "");
  const invite = useMutation({ mutationFn: () => createAdminInvite(store.name, email.trim() || undefined) });
  if (store.engine !== "medusa" || !store.ready) return null;
  const link = invite.data;
  return (
    <section className="panel" aria-labelledby="admin-title">
      <h2 id="admin-title">Admin access</h2>
      <p className="muted">
        Get a one-time link to the store's admin and choose your password there. The link is shown only here, only
        now; asking again makes the previous one stop working.
      </p>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          invite.mutate();
        }}
      >
        <label>
          Admin e-mail{" "}
          <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} placeholder="you@example.com" />
        </label>
        <button type="submit" disabled={invite.isPending}>
          {invite.isPending ? "Asking the store…" : "Get admin link"}
        </button>
      </form>
      {invite.error ? (
        <p className="form-error" role="alert">
          {describeError(invite.error)}
        </p>
      ) : null}
      {link ? (
        <p className="invite" data-testid="admin-invite">
          {link.kind === "reset" ? "You are an admin already: reset your password" : "Accept the invite"} for{" "}
          <strong>{link.email}</strong> (valid until <time dateTime={link.expiresAt}>{new Date(link.expiresAt).toLocaleString()}</time>
          ):{" "}
          <a href={link.url} target="_blank" rel="noreferrer">
            Open the admin
          </a>
        </p>
      ) : null}
    </section>
  );
}
