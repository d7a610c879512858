import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { AdminAccess } from "./AdminAccess";
import type { Store } from "../api/types";

const store = (ready: boolean): Store =>
  ({
    name: "shop",
    engine: "medusa",
    plan: "small",
    owner: "alice@example.com",
    phase: ready ? "Ready" : "Provisioning",
    ready,
    createdAt: "2026-12-01T10:00:00Z",
    conditions: [],
    activity: [],
    urls: ready ? { storefront: "http://shop.localhost", admin: "http://shop.localhost/app" } : undefined,
  }) as Store;

function renderWith(s: Store, user: string) {
  const qc = new QueryClient({ defaultOptions: { mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <AdminAccess store={s} user={user} />
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("AdminAccess", () => {
  it("asks the API for the owner's one-time link and shows it once", async () => {
    const seen: Request[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
        const req = input instanceof Request ? input : new Request(new URL(String(input), location.origin), init);
        seen.push(req.clone());
        return new Response(
          JSON.stringify({ kind: "invite", email: "alice@example.com", url: "http://shop.localhost/app/invite?token=t1", expiresAt: "2026-12-02T10:00:00Z" }),
          { status: 200, headers: { "Content-Type": "application/json" } },
        );
      }),
    );
    renderWith(store(true), "alice@example.com");
    expect((screen.getByLabelText(/Admin e-mail/) as HTMLInputElement).value).toBe("alice@example.com");
    await userEvent.click(screen.getByRole("button", { name: "Get admin link" }));
    const link = await screen.findByRole("link", { name: "Open the admin" });
    expect(link.getAttribute("href")).toBe("http://shop.localhost/app/invite?token=t1");
    const sent = seen[0];
    if (!sent) throw new Error("the dashboard sent no request");
    expect(new URL(sent.url).pathname).toBe("/api/v1/stores/shop/admin-invite");
    expect(await sent.json()).toEqual({ email: "alice@example.com" });
  });

  it("says why when the store cannot answer", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(
        async () =>
          new Response(JSON.stringify({ type: "https://storefleet.dev/problems/unavailable", title: "Service unavailable", status: 503, detail: "the store's backend cannot be reached" }), {
            status: 503,
            headers: { "Content-Type": "application/problem+json" },
          }),
      ),
    );
    renderWith(store(true), "alice@example.com");
    await userEvent.click(screen.getByRole("button", { name: "Get admin link" }));
    expect((await screen.findByRole("alert")).textContent).toContain("the store's backend cannot be reached");
  });

  it("is not offered before the store is Ready", () => {
    const { container } = renderWith(store(false), "alice@example.com");
    expect(container.textContent).toBe("");
  });
});
