import { useEffect, useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { fetchEventSource, type EventSourceMessage } from "@microsoft/fetch-event-source";
import { credentialHeaders } from "./api/identity";
import type { Store, StoreEvent, StoreList } from "./api/types";

// Live updates from the API's Server-Sent Events. EventSource cannot send the
// identity headers, so the streams are read with fetch; on a dropped
// connection or an "end" message they reconnect by themselves, resuming
// after the last event id (Last-Event-ID), with backoff.

export type StreamState = "connecting" | "live" | "reconnecting" | "closed";

class Fatal extends Error {}
class Reconnect extends Error {}

const maxBackoffMs = 15_000;

export interface StreamOptions {
  path: string;
  onMessage: (m: EventSourceMessage) => void;
  onState: (s: StreamState) => void;
}

// openStream reads one SSE endpoint until the returned function is called.
export function openStream({ path, onMessage, onState }: StreamOptions): () => void {
  const ctrl = new AbortController();
  let failures = 0;
  onState("connecting");
  void fetchEventSource(path, {
    signal: ctrl.signal,
    headers: credentialHeaders(),
    openWhenHidden: true,
    async onopen(res) {
      if (res.ok && res.headers.get("content-type")?.startsWith("text/event-stream")) {
        failures = 0;
        onState("live");
        return;
      }
      // 404 is retried: a store asked for through the stores repo has no
      // stream until it is synced into the cluster, and the page decides
      // "gone" from the store itself.
      if (res.status === 401 || res.status === 403 || res.status === 422) throw new Fatal(`HTTP ${res.status}`);
      throw new Reconnect(`HTTP ${res.status}`);
    },
    onmessage(m) {
      if (m.event === "end") throw new Reconnect("server ended the stream");
      onMessage(m);
    },
    onclose() {
      throw new Reconnect("closed");
    },
    onerror(err) {
      if (err instanceof Fatal) {
        onState("closed");
        throw err;
      }
      failures++;
      onState("reconnecting");
      return Math.min(maxBackoffMs, 500 * 2 ** Math.min(failures, 5));
    },
  }).catch(() => onState("closed"));
  return () => ctrl.abort();
}

// useStoreStream follows one store: the snapshot and each activity refresh
// the store's query; the events themselves are returned for the log.
export function useStoreStream(name: string, user: string) {
  const qc = useQueryClient();
  const [events, setEvents] = useState<StoreEvent[]>([]);
  const [state, setState] = useState<StreamState>("connecting");
  useEffect(() => {
    setEvents([]);
    return openStream({
      path: `/api/v1/stores/${encodeURIComponent(name)}/events`,
      onState: setState,
      onMessage(m) {
        if (m.event === "snapshot") {
          qc.setQueryData<Store>(["store", user, name], JSON.parse(m.data) as Store);
          return;
        }
        if (m.event === "activity") {
          const e = JSON.parse(m.data) as StoreEvent;
          setEvents((prev) => (prev.some((p) => p.id === e.id && e.id) ? prev : [...prev, e]));
          void qc.invalidateQueries({ queryKey: ["store", user, name] });
          void qc.invalidateQueries({ queryKey: ["stores", user] });
        }
      },
    });
  }, [name, user, qc]);
  return { events, state };
}

// useFleetStream keeps the list of the caller's stores live.
export function useFleetStream(user: string) {
  const qc = useQueryClient();
  const [state, setState] = useState<StreamState>("connecting");
  useEffect(
    () =>
      openStream({
        path: "/api/v1/events",
        onState: setState,
        onMessage(m) {
          if (m.event === "snapshot") {
            qc.setQueryData<StoreList>(["stores", user], JSON.parse(m.data) as StoreList);
          } else if (m.event === "activity") {
            void qc.invalidateQueries({ queryKey: ["stores", user] });
          }
        },
      }),
    [user, qc],
  );
  return state;
}
