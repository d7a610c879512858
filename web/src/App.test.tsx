import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { App } from "./App";

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": status < 400 ? "application/json" : "application/problem+json" } });

// api answers like the Intent API for one identity scheme, recording what
// the dashboard sent.
function api(auth: object, me: (req: Request) => Response) {
  const seen: Request[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(new URL(String(input), location.origin), init);
    seen.push(req);
    const path = new URL(req.url).pathname;
    if (path === "/api/v1/auth") return json(auth);
    if (path === "/api/v1/me") return me(req);
    if (path === "/api/v1/stores") return json({ items: [] });
    // The live stream: nothing to say in these tests.
    return new Response("", { status: 200, headers: { "Content-Type": "text/event-stream" } });
  });
  vi.stubGlobal("fetch", fetchMock);
  return seen;
}

function renderApp() {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <App />
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  sessionStorage.clear();
  localStorage.clear();
});

describe("identity", () => {
  it("asks for a token in jwt mode and sends it as a bearer token", async () => {
    const seen = api({ mode: "jwt", userSwitcher: false, issuer: "https://id.example.com" }, (req) =>
      req.headers.get("Authorization") === "Bearer tok-1"
        ? json({ user: "carol", admin: false })
        : json({ type: "https://storefleet.dev/problems/unauthenticated", title: "Not authenticated", status: 401, detail: "a bearer token is required" }, 401),
    );
    renderApp();
    expect(await screen.findByRole("heading", { name: "Sign in" })).toBeTruthy();
    expect(screen.getByText("https://id.example.com")).toBeTruthy();
    await userEvent.type(screen.getByLabelText("Token"), "tok-1");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByText("carol")).toBeTruthy();
    expect(await screen.findByTestId("empty-state")).toBeTruthy();
    expect(seen.some((r) => r.headers.get("X-User-Id"))).toBe(false);
  });

  it("sends nothing itself behind a proxy, and says so when the proxy did not identify the user", async () => {
    const seen = api({ mode: "header", userSwitcher: false, userHeader: "X-User-Id" }, () =>
      json({ type: "https://storefleet.dev/problems/unauthenticated", title: "Not authenticated", status: 401, detail: "X-User-Id is missing" }, 401),
    );
    renderApp();
    expect(await screen.findByRole("heading", { name: "Not signed in" })).toBeTruthy();
    expect(screen.getByText(/X-User-Id is missing/)).toBeTruthy();
    expect(seen.every((r) => !r.headers.get("X-User-Id") && !r.headers.get("Authorization"))).toBe(true);
  });

  it("offers the user switcher in storefleet dev and sends the chosen user", async () => {
    const seen = api({ mode: "header", userSwitcher: true, userHeader: "X-User-Id" }, (req) =>
      json({ user: req.headers.get("X-User-Id"), admin: false }),
    );
    renderApp();
    const switcher = await screen.findByLabelText("User (dev)");
    expect(await screen.findByTestId("empty-state")).toBeTruthy();
    await userEvent.clear(switcher);
    await userEvent.type(switcher, "bob");
    await userEvent.click(screen.getByRole("button", { name: "Switch" }));
    await screen.findByTestId("empty-state");
    expect(seen.at(-1)?.headers.get("X-User-Id")).toBe("bob");
    expect(sessionStorage.getItem("storefleet.user")).toBe("bob");
  });
});

describe("store page", () => {
  it("shows a Git store's recorded commit author, marked as unverified, and no requester", async () => {
    const store = {
      name: "git-shop",
      engine: "medusa",
      plan: "small",
      owner: "carol",
      phase: "Ready",
      runtime: "Simulated",
      createdAt: new Date().toISOString(),
      conditions: [],
      activity: [],
      urls: { storefront: "http://git-shop.localhost/", admin: "http://git-shop.localhost/app" },
      source: { channel: "git", commit: "0123456789abcdef0123456789abcdef01234567", gitAuthor: "Carol <carol@example.com>" },
    };
    vi.stubGlobal(
      "fetch",
      vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
        const req = input instanceof Request ? input : new Request(new URL(String(input), location.origin), init);
        const path = new URL(req.url).pathname;
        if (path === "/api/v1/auth") return json({ mode: "header", userSwitcher: true, userHeader: "X-User-Id" });
        if (path === "/api/v1/me") return json({ user: "carol", admin: false });
        if (path === "/api/v1/stores/git-shop") return json(store);
        if (path === "/api/v1/stores") return json({ items: [store] });
        return new Response("", { status: 200, headers: { "Content-Type": "text/event-stream" } });
      }),
    );
    history.pushState({}, "", "/stores/git-shop");
    renderApp();
    const author = await screen.findByText("Carol <carol@example.com>");
    expect(author.getAttribute("title")).toMatch(/not a verified identity/);
    expect(screen.getByText(/via git/)).toBeTruthy();
    history.pushState({}, "", "/");
  });
});
