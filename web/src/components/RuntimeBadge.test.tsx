import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { RuntimeBadge } from "./RuntimeBadge";

afterEach(cleanup);

describe("RuntimeBadge", () => {
  it("names a store on kwok nodes simulated, with why in its title", () => {
    render(<RuntimeBadge runtime="Simulated" />);
    const badge = screen.getByText("simulated");
    expect(badge.getAttribute("title")).toContain("no container runs");
  });
  it("names a store on both kinds of node partly simulated", () => {
    render(<RuntimeBadge runtime="Mixed" />);
    expect(screen.getByText("partly simulated")).toBeTruthy();
  });
  it("shows nothing for a store that really runs or is not scheduled yet", () => {
    const { container } = render(
      <>
        <RuntimeBadge runtime="Real" />
        <RuntimeBadge runtime={undefined} />
      </>,
    );
    expect(container.textContent).toBe("");
  });
});
