import { useMemo, useRef } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useLocation } from "wouter";
import { deleteStore, getStore, retryStore } from "../api/client";
import { ApiError, describeError } from "../api/problem";
import type { Store, StoreEvent } from "../api/types";
import { useStoreStream } from "../events";
import { age, formatDuration, pipeline, shortCommit, type Step } from "../pipeline";
import { AdminAccess } from "./AdminAccess";
import { LiveIndicator } from "./LiveIndicator";
import { PhaseBadge } from "./PhaseBadge";
import { RuntimeBadge } from "./RuntimeBadge";
import { StoreLinks } from "./StoreLinks";
import { useNow } from "../useNow";

export function StorePage({ name, user }: { name: string; user: string }) {
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const { events, state } = useStoreStream(name, user);
  const store = useQuery({
    queryKey: ["store", user, name],
    queryFn: () => getStore(name),
    // The stream refreshes the store; polling only covers a stream that is down.
    refetchInterval: state === "live" ? false : 5000,
  });
  const retry = useMutation({
    mutationFn: () => retryStore(name),
    onSuccess: (s) => qc.setQueryData(["store", user, name], s),
  });
  const remove = useMutation({
    mutationFn: () => deleteStore(name),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ["stores", user] });
      navigate("/");
    },
  });
  const dialog = useRef<HTMLDialogElement>(null);
  const now = useNow();

  if (store.error instanceof ApiError && store.error.status === 404) {
    return (
      <div className="panel">
        <h1>{name}</h1>
        <p>This store does not exist (any more), or it is not yours.</p>
        <Link href="/">Back to your stores</Link>
      </div>
    );
  }
  if (store.error) {
    return (
      <div className="panel error" role="alert">
        <h1>{name}</h1>
        <p>{describeError(store.error)}</p>
      </div>
    );
  }
  if (!store.data) return <p className="muted">Loading {name}…</p>;
  const s = store.data;
  const actionError = [retry.error, remove.error].find(Boolean);

  return (
    <div className="store-page">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link href="/">Stores</Link> / <span aria-current="page">{s.name}</span>
      </nav>
      <section className="panel" aria-labelledby="store-title">
        <div className="panel-head">
          <h1 id="store-title">{s.name}</h1>
          <PhaseBadge phase={s.phase} />
          <RuntimeBadge runtime={s.runtime} />
          <LiveIndicator state={state} />
        </div>
        <p className="summary">
          {s.engine === "woocommerce" ? "WooCommerce" : "MedusaJS"} · plan {s.plan} · created{" "}
          <time dateTime={s.createdAt}>{age(s.createdAt, now)} ago</time>
          {s.source ? <> · via {s.source.channel}</> : null}
          {s.source?.commit ? <> (commit {shortCommit(s.source.commit)})</> : null}
          {s.source?.gitAuthor ? (
            <>
              {" "}
              · committed by{" "}
              <span className="git-author" title="as Git recorded it: not a verified identity">
                {s.source.gitAuthor}
              </span>
            </>
          ) : null}
          {s.source?.pullRequest ? (
            <>
              {" "}
              · <a href={s.source.pullRequest}>pull request</a>
            </>
          ) : null}
        </p>
        {s.message ? <p className="message">{s.message}</p> : null}
        <StoreLinks store={s} />
        <div className="actions">
          <button type="button" onClick={() => retry.mutate()} disabled={retry.isPending || s.phase === "Deleting"}>
            {retry.isPending ? "Asking…" : "Retry now"}
          </button>
          <button
            type="button"
            className="danger"
            onClick={() => dialog.current?.showModal()}
            disabled={s.phase === "Deleting" || remove.isPending}
          >
            Delete store
          </button>
        </div>
        {actionError ? (
          <p className="form-error" role="alert">
            {describeError(actionError)}
          </p>
        ) : null}
        {retry.isSuccess ? <p className="muted">The operator was asked to try again.</p> : null}
      </section>

      <AdminAccess store={s} user={user} />

      {s.diagnosis ? (
        <section className="panel diagnosis" role="alert" aria-labelledby="diag-title">
          <h2 id="diag-title">What is wrong: {s.diagnosis.reason}</h2>
          <p>{s.diagnosis.message}</p>
          {s.diagnosis.object ? (
            <p className="muted">
              Object: <code>{s.diagnosis.object}</code>
            </p>
          ) : null}
        </section>
      ) : null}

      <section className="panel" aria-labelledby="pipeline-title">
        <h2 id="pipeline-title">Provisioning</h2>
        <Pipeline steps={pipeline(s)} />
      </section>

      <div className="two-col">
        <section className="panel" aria-labelledby="activity-title">
          <h2 id="activity-title">Activity</h2>
          <ActivityLog store={s} live={events} />
        </section>
        <section className="panel" aria-labelledby="details-title">
          <h2 id="details-title">Release and drift</h2>
          <Details store={s} now={now} />
        </section>
      </div>

      <section className="panel" aria-labelledby="conditions-title">
        <h2 id="conditions-title">Conditions</h2>
        <Conditions store={s} />
      </section>

      <dialog ref={dialog} aria-labelledby="confirm-title" className="confirm">
        <form method="dialog">
          <h2 id="confirm-title">Delete {s.name}?</h2>
          <p>
            Its namespace, database and every order in it are removed. This cannot be undone.
          </p>
          <div className="actions">
            <button value="cancel" autoFocus>
              Cancel
            </button>
            <button
              value="delete"
              className="danger"
              onClick={(e) => {
                e.preventDefault();
                dialog.current?.close();
                remove.mutate();
              }}
            >
              Delete {s.name}
            </button>
          </div>
        </form>
      </dialog>
    </div>
  );
}

const stateText: Record<Step["state"], string> = {
  done: "done",
  active: "in progress",
  failed: "failed",
  waiting: "waiting",
  skipped: "not provisioned",
};

export function Pipeline({ steps }: { steps: Step[] }) {
  return (
    <ol className="pipeline">
      {steps.map((st) => (
        <li key={st.key} className={`step step-${st.state}`} data-step={st.key} data-state={st.state}>
          <span className="dot" aria-hidden="true" />
          <div>
            <div className="step-title">
              {st.label} <span className="visually-hidden">: {stateText[st.state]}</span>
              {st.durationMs !== undefined ? <span className="muted"> · {formatDuration(st.durationMs)}</span> : null}
            </div>
            {st.message ? <div className="step-message">{st.message}</div> : null}
            {st.at ? (
              <time className="muted" dateTime={st.at}>
                {new Date(st.at).toLocaleTimeString()}
              </time>
            ) : null}
          </div>
        </li>
      ))}
    </ol>
  );
}

interface LogEntry {
  key: string;
  time: string;
  type: string;
  message?: string;
}

// ActivityLog is the store's activity ring (the last 15 entries, from the
// status) followed by what the stream delivered since the page opened.
function ActivityLog({ store, live }: { store: Store; live: StoreEvent[] }) {
  const entries = useMemo(() => {
    const seen = new Set<string>();
    const out: LogEntry[] = [];
    const add = (time: string, type: string, message?: string) => {
      const key = `${type}@${time.slice(0, 19)}`;
      if (seen.has(key)) return;
      seen.add(key);
      out.push({ key, time, type, message });
    };
    for (const a of store.activity ?? []) add(a.timestamp, a.event, a.message);
    for (const e of live) add(e.time, e.type, e.message);
    return out.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  }, [store.activity, live]);
  if (entries.length === 0) return <p className="muted">Nothing has happened yet.</p>;
  return (
    <ol className="activity" aria-live="polite" data-testid="activity">
      {entries.map((e) => (
        <li key={e.key} data-event={e.type}>
          <time dateTime={e.time}>{new Date(e.time).toLocaleTimeString()}</time>
          <code>{e.type}</code>
          {e.message ? <span>{e.message}</span> : null}
        </li>
      ))}
    </ol>
  );
}

function Details({ store, now }: { store: Store; now: number }) {
  const r = store.release;
  const d = store.drift;
  return (
    <dl className="details">
      <dt>Release</dt>
      <dd>
        {r ? (
          <>
            {r.mode === "flux" ? "Flux HelmRelease" : "Helm SDK"} <code>{r.namespace}/{r.name}</code>
            {r.revision ? <> · revision {r.revision}</> : null}
            {r.chartVersion ? <> · chart {r.chartVersion}</> : null}
          </>
        ) : (
          <span className="muted">not installed yet</span>
        )}
      </dd>
      <dt>Drift</dt>
      <dd>
        {d ? (
          <>
            {d.corrections === 0 ? "none corrected" : `${d.corrections} correction${d.corrections === 1 ? "" : "s"}`}
          </>
        ) : (
          <span className="muted">not checked yet</span>
        )}
      </dd>
      {d?.lastCorrection ? (
        <>
          <dt>Last correction</dt>
          <dd>
            {d.lastCorrection}
            {d.lastCorrected ? <> ({age(d.lastCorrected, now)} ago)</> : null}
          </dd>
        </>
      ) : null}
      {store.domain ? (
        <>
          <dt>Domain</dt>
          <dd>{store.domain}</dd>
        </>
      ) : null}
      <dt>Owner</dt>
      <dd>{store.owner}</dd>
    </dl>
  );
}

function Conditions({ store }: { store: Store }) {
  const conditions = store.conditions ?? [];
  if (conditions.length === 0) return <p className="muted">No conditions reported yet.</p>;
  return (
    <div className="table-scroll">
      <table className="conditions cards">
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Status</th>
            <th scope="col">Reason</th>
            <th scope="col">Message</th>
            <th scope="col">Since</th>
          </tr>
        </thead>
        <tbody>
          {conditions.map((c) => (
            <tr key={c.type}>
              <th scope="row" data-label="Type">
                {c.type}
              </th>
              <td data-label="Status" className={`status-${c.status.toLowerCase()}`}>
                {c.status}
              </td>
              <td data-label="Reason">{c.reason}</td>
              <td data-label="Message">{c.message}</td>
              <td data-label="Since">
                <time dateTime={c.lastTransitionTime}>{new Date(c.lastTransitionTime).toLocaleTimeString()}</time>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
