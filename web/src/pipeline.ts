import { provisioning } from "./api/provisioning";
import type { Condition, Store } from "./api/types";

// The provisioning pipeline of a store as steps, from its conditions and
// activity: what happened, what happens now, what comes next.

export type StepState = "done" | "active" | "failed" | "waiting" | "skipped";

export interface Step {
  key: string;
  label: string;
  state: StepState;
  message?: string;
  // at is when the step was reached (done) or last changed.
  at?: string;
  // durationMs is how long the step took, from the previous step's end.
  durationMs?: number;
}

// The reconciler's steps in order (DESIGN §4), as the API publishes them:
// each one's condition turns True and its event enters the activity ring
// when it is reached.
export const clusterSteps = provisioning.steps.map((s) => ({ key: s.key, label: s.title, condition: s.condition, event: s.event }));

// Reasons of a False condition that mean the step failed (not merely that it
// is still in progress).
const failureReasons: ReadonlySet<string> = new Set(provisioning.failureReasons);

// Ready reasons of a store that so far exists only in the stores repo.
const gitPendingReasons: ReadonlySet<string> = new Set([provisioning.committedReason, provisioning.pullRequestReason]);

function condition(store: Store, type: string): Condition | undefined {
  return store.conditions?.find((c) => c.type === type);
}

function lastEventTime(store: Store, event: string): string | undefined {
  let at: string | undefined;
  for (const a of store.activity ?? []) if (a.event === event) at = a.timestamp;
  return at;
}

function ms(t?: string): number | undefined {
  if (!t) return undefined;
  const v = Date.parse(t);
  return Number.isNaN(v) ? undefined : v;
}

export function shortCommit(sha?: string): string {
  return sha ? sha.slice(0, 8) : "";
}

// gitSteps are the steps before the cluster for a store asked for through the
// stores repo: the commit (or pull request) and the sync into the cluster.
function gitSteps(store: Store): Step[] {
  const ready = condition(store, provisioning.readyCondition);
  const inGitOnly = store.phase === "Pending" && !!ready && gitPendingReasons.has(ready.reason ?? "");
  const prOpen = inGitOnly && ready?.reason === provisioning.pullRequestReason;
  const commit = store.source?.commit;
  const committed: Step = prOpen
    ? { key: "committed", label: "Pull request", state: "active", message: ready?.message, at: ready?.lastTransitionTime }
    : {
        key: "committed",
        label: "Committed",
        state: "done",
        message: commit ? `commit ${shortCommit(commit)}` : undefined,
        at: inGitOnly ? ready?.lastTransitionTime : undefined,
      };
  const synced: Step = inGitOnly
    ? { key: "synced", label: "Synced", state: prOpen ? "waiting" : "active", message: prOpen ? undefined : ready?.message }
    : { key: "synced", label: "Synced", state: "done", message: "in the cluster", at: store.createdAt };
  return [committed, synced];
}

export function pipeline(store: Store): Step[] {
  const steps: Step[] = store.source?.channel === "git" ? gitSteps(store) : [];
  const ready = condition(store, provisioning.readyCondition);
  const inGitOnly = store.phase === "Pending" && !!ready && gitPendingReasons.has(ready.reason ?? "");

  if (store.phase === "ComingSoon") {
    for (const s of clusterSteps) {
      steps.push({ key: s.key, label: s.label, state: "skipped" });
    }
    const first = steps.find((s) => s.state === "skipped");
    if (first) first.message = store.message ?? "This engine is coming soon: nothing is provisioned yet.";
    return steps;
  }

  let previousEnd = ms(lastEventTime(store, provisioning.startEvent)) ?? ms(store.createdAt);
  let blocked = inGitOnly; // nothing in the cluster happens before the sync
  for (const s of clusterSteps) {
    const c = condition(store, s.condition);
    if (!blocked && c?.status === "True") {
      const at = lastEventTime(store, s.event) ?? c.lastTransitionTime;
      const end = ms(at);
      steps.push({
        key: s.key,
        label: s.label,
        state: "done",
        message: c.message,
        at,
        durationMs: end !== undefined && previousEnd !== undefined ? Math.max(0, end - previousEnd) : undefined,
      });
      if (end !== undefined) previousEnd = end;
      continue;
    }
    if (blocked) {
      steps.push({ key: s.key, label: s.label, state: "waiting" });
      continue;
    }
    // The first step not done is where the store is now.
    blocked = true;
    const failed =
      (c?.status === "False" && failureReasons.has(c.reason ?? "")) ||
      (store.phase === "Failed" && (c?.status !== "True"));
    const message = c?.message || (failed ? (ready?.message ?? store.message) : undefined);
    steps.push({
      key: s.key,
      label: s.label,
      state: store.phase === "Deleting" ? "waiting" : failed ? "failed" : "active",
      message,
      at: c?.lastTransitionTime,
    });
  }
  return steps;
}

export function formatDuration(ms?: number): string {
  if (ms === undefined) return "";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

// age reads like kubectl's AGE column.
export function age(since: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
