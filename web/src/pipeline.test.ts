import { describe, expect, it } from "vitest";
import type { Condition, Store } from "./api/types";
import { age, formatDuration, pipeline } from "./pipeline";

const t0 = "2026-11-26T10:00:00Z";
const at = (s: number) => new Date(Date.parse(t0) + s * 1000).toISOString().replace(".000Z", "Z");

function cond(type: string, status: Condition["status"], reason = "Succeeded", message = "", s = 0): Condition {
  return { type, status, reason, message, lastTransitionTime: at(s) };
}

function store(over: Partial<Store>): Store {
  return {
    name: "acme",
    engine: "medusa",
    plan: "small",
    owner: "alice",
    phase: "Provisioning",
    ready: false,
    createdAt: t0,
    conditions: [],
    activity: [],
    ...over,
  };
}

const states = (s: Store) => pipeline(s).map((st) => `${st.key}=${st.state}`);

describe("pipeline", () => {
  it("puts a new store at its first step", () => {
    expect(states(store({}))).toEqual([
      "namespace=active",
      "helm=waiting",
      "database=waiting",
      "backend=waiting",
      "storefront=waiting",
      "ready=waiting",
    ]);
  });

  it("marks the steps whose conditions are True done, with timing from the activity", () => {
    const s = store({
      conditions: [
        cond("NamespaceReady", "True", "Succeeded", "isolated", 2),
        cond("HelmInstalled", "True", "Succeeded", "revision 1", 5),
        cond("DatabaseReady", "False", "WorkloadNotReady", "StatefulSet postgres: 0/1 ready", 5),
      ],
      activity: [
        { timestamp: at(1), event: "PROVISIONING_START" },
        { timestamp: at(2), event: "NAMESPACE_READY" },
        { timestamp: at(6), event: "HELM_INSTALLED" },
      ],
    });
    const steps = pipeline(s);
    expect(states(s).slice(0, 4)).toEqual(["namespace=done", "helm=done", "database=active", "backend=waiting"]);
    expect(steps[0]).toMatchObject({ message: "isolated", durationMs: 1000 });
    // The event's time wins over the condition's (which moves on re-transitions).
    expect(steps[1]).toMatchObject({ at: at(6), durationMs: 4000 });
    expect(steps[2]).toMatchObject({ message: "StatefulSet postgres: 0/1 ready" });
  });

  it("shows a failing step as failed, with its condition's message", () => {
    const s = store({
      phase: "Failed",
      conditions: [
        cond("NamespaceReady", "True"),
        cond("HelmInstalled", "False", "InstallFailed", "chart values invalid"),
        cond("Ready", "False", "InstallFailed", "install failed"),
      ],
    });
    expect(states(s).slice(0, 3)).toEqual(["namespace=done", "helm=failed", "database=waiting"]);
    expect(pipeline(s)[1]?.message).toBe("chart values invalid");
  });

  it("fails the current step of a Failed store even when its condition only says not ready", () => {
    const s = store({
      phase: "Failed",
      conditions: [cond("NamespaceReady", "True"), cond("HelmInstalled", "True"), cond("Ready", "False", "RetryLimitReached", "gave up")],
    });
    const steps = pipeline(s);
    expect(steps[2]).toMatchObject({ key: "database", state: "failed", message: "gave up" });
  });

  it("is all done when the store is Ready", () => {
    const types = ["NamespaceReady", "HelmInstalled", "DatabaseReady", "BackendReady", "StorefrontReady", "Ready"];
    const s = store({ phase: "Ready", ready: true, conditions: types.map((t, i) => cond(t, "True", "Succeeded", "", i)) });
    expect(pipeline(s).every((st) => st.state === "done")).toBe(true);
  });

  it("adds committed and synced for a store from the stores repo, waiting on the sync", () => {
    const s = store({
      phase: "Pending",
      source: { channel: "git", commit: "0123456789abcdef" },
      conditions: [cond("Ready", "False", "Committed", "committed 01234567 to the stores repo, waiting for sync")],
    });
    expect(states(s)).toEqual([
      "committed=done",
      "synced=active",
      "namespace=waiting",
      "helm=waiting",
      "database=waiting",
      "backend=waiting",
      "storefront=waiting",
      "ready=waiting",
    ]);
    expect(pipeline(s)[0]?.message).toBe("commit 01234567");
  });

  it("shows an open pull request as the current step", () => {
    const s = store({
      phase: "Pending",
      source: { channel: "git", pullRequest: "http://forge/pulls/3" },
      conditions: [cond("Ready", "False", "PullRequestOpen", "pull request open: http://forge/pulls/3")],
    });
    expect(states(s).slice(0, 3)).toEqual(["committed=active", "synced=waiting", "namespace=waiting"]);
    expect(pipeline(s)[0]).toMatchObject({ label: "Pull request", message: "pull request open: http://forge/pulls/3" });
  });

  it("continues with the cluster steps once a Git store is synced", () => {
    const s = store({ source: { channel: "git", commit: "abc" }, conditions: [cond("NamespaceReady", "True")] });
    expect(states(s).slice(0, 4)).toEqual(["committed=done", "synced=done", "namespace=done", "helm=active"]);
  });

  it("provisions nothing for an engine that is coming soon", () => {
    const s = store({ engine: "woocommerce", phase: "ComingSoon", message: "WooCommerce is coming soon" });
    const steps = pipeline(s);
    expect(steps.every((st) => st.state === "skipped")).toBe(true);
    expect(steps[0]?.message).toBe("WooCommerce is coming soon");
  });

  it("does not show a deleting store as still provisioning", () => {
    const s = store({ phase: "Deleting", conditions: [cond("NamespaceReady", "True")] });
    expect(states(s).slice(0, 2)).toEqual(["namespace=done", "helm=waiting"]);
  });
});

describe("formatting", () => {
  it("formats durations", () => {
    expect(formatDuration(undefined)).toBe("");
    expect(formatDuration(250)).toBe("250 ms");
    expect(formatDuration(1500)).toBe("1.5 s");
    expect(formatDuration(42_000)).toBe("42 s");
    expect(formatDuration(125_000)).toBe("2 min 5 s");
  });
  it("reads ages like kubectl", () => {
    const now = Date.parse(t0);
    expect(age(at(-5), now)).toBe("5s");
    expect(age(at(-300), now)).toBe("5m");
    expect(age(at(-7200), now)).toBe("2h");
    expect(age(at(-3 * 86400), now)).toBe("3d");
  });
});
