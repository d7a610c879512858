import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { CreateStoreForm } from "./CreateStoreForm";

function renderForm(plans?: string[]) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <CreateStoreForm user="alice" plans={plans} />
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("CreateStoreForm", () => {
  it("checks the name as it is typed", async () => {
    renderForm();
    const name = screen.getByLabelText("Name");
    await userEvent.type(name, "My");
    expect(screen.getByTestId("name-error").textContent).toBe("Use lowercase letters only.");
    expect(name.getAttribute("aria-invalid")).toBe("true");
    await userEvent.clear(name);
    await userEvent.type(name, "my-shop");
    expect(screen.getByTestId("name-error").textContent).toBe("");
    expect(name.getAttribute("aria-invalid")).toBe("false");
  });

  it("shows the API's field error on the field, and quota errors in words", async () => {
    const answers = [
      new Response(
        JSON.stringify({
          type: "https://storefleet.dev/problems/invalid",
          title: "Invalid request",
          status: 422,
          errors: [{ location: "body.name", message: "name is reserved" }],
        }),
        { status: 422, headers: { "Content-Type": "application/problem+json" } },
      ),
      new Response(
        JSON.stringify({ type: "https://storefleet.dev/problems/quota-exceeded", title: "Store quota exceeded", status: 403, limit: 3 }),
        { status: 403, headers: { "Content-Type": "application/problem+json" } },
      ),
    ];
    const fetchMock = vi.fn(async () => answers.shift()!);
    vi.stubGlobal("fetch", fetchMock);
    renderForm();
    await userEvent.type(screen.getByLabelText("Name"), "root");
    await userEvent.click(screen.getByRole("button", { name: "Create store" }));
    const err = await screen.findByText("name is reserved");
    expect(err.getAttribute("data-source")).toBe("api");

    await userEvent.clear(screen.getByLabelText("Name"));
    await userEvent.type(screen.getByLabelText("Name"), "fourth");
    await userEvent.click(screen.getByRole("button", { name: "Create store" }));
    expect((await screen.findByTestId("form-error")).textContent).toBe(
      "You already have 3 stores, the most you may have. Delete one to create another.",
    );
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it("offers only the plans the user may pick, and shows a refused plan on its field", async () => {
    const fetchMock = vi.fn(
      async () =>
        new Response(
          JSON.stringify({
            type: "https://storefleet.dev/problems/plan-not-allowed",
            title: "Plan not allowed",
            status: 403,
            detail: 'plan "medium" is not available to you; you may pick: small',
            errors: [{ location: "body.plan", message: 'plan "medium" is not available to you; you may pick: small' }],
          }),
          { status: 403, headers: { "Content-Type": "application/problem+json" } },
        ),
    );
    vi.stubGlobal("fetch", fetchMock);
    renderForm(["small", "medium"]);
    const select = screen.getByLabelText<HTMLSelectElement>("Plan");
    expect(Array.from(select.options).map((o) => o.value)).toEqual(["small", "medium"]);
    await userEvent.selectOptions(select, "medium");
    await userEvent.type(screen.getByLabelText("Name"), "shop");
    await userEvent.click(screen.getByRole("button", { name: "Create store" }));
    expect((await screen.findByTestId("plan-error")).textContent).toBe(
      'plan "medium" is not available to you; you may pick: small',
    );
  });

  it("marks WooCommerce as coming soon", () => {
    renderForm();
    expect(screen.getByLabelText(/WooCommerce/).closest("label")?.textContent).toContain("Coming soon");
  });
});
