import { afterEach, describe, expect, it, vi } from "vitest";
import type { EventSourceMessage } from "@microsoft/fetch-event-source";
import { openStream, type StreamState } from "./events";

const sse = (body: string, status = 200) =>
  new Response(body, { status, headers: { "Content-Type": status === 200 ? "text/event-stream" : "application/problem+json" } });

// openSSE is a stream that says body and then stays open, as a live one does.
const openSSE = (body: string) =>
  new Response(
    new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(body));
      },
    }),
    { headers: { "Content-Type": "text/event-stream" } },
  );

afterEach(() => vi.unstubAllGlobals());

describe("openStream", () => {
  it("reconnects by itself after the server ends the stream, resuming after the last event", async () => {
    const requests: Request[] = [];
    const answers = [
      sse('id: 7\nevent: activity\ndata: {"type":"NAMESPACE_READY"}\n\nevent: end\ndata: {"reason":"server shutting down"}\n\n'),
      sse("", 503), // the next replica is not up yet
      openSSE('id: 8\nevent: activity\ndata: {"type":"READY"}\n\n'),
    ];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
        requests.push(new Request(new URL(String(input), location.origin), init));
        return answers.shift() ?? new Promise<Response>(() => {});
      }),
    );
    const messages: EventSourceMessage[] = [];
    const states: StreamState[] = [];
    const stop = openStream({ path: "/api/v1/stores/acme/events", onMessage: (m) => messages.push(m), onState: (s) => states.push(s) });
    await vi.waitFor(() => expect(messages.map((m) => m.id)).toEqual(["7", "8"]), { timeout: 6000, interval: 50 });
    stop();
    expect(requests).toHaveLength(3);
    expect(requests[0]?.headers.get("last-event-id")).toBeNull();
    expect(requests[1]?.headers.get("last-event-id")).toBe("7");
    expect(requests[2]?.headers.get("last-event-id")).toBe("7");
    expect(states).toEqual(["connecting", "live", "reconnecting", "reconnecting", "live"]);
  });

  it("gives up on a request the server refuses for good", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => sse('{"status":401}', 401)));
    const states: StreamState[] = [];
    openStream({ path: "/api/v1/events", onMessage: () => {}, onState: (s) => states.push(s) });
    await vi.waitFor(() => expect(states.at(-1)).toBe("closed"), { timeout: 2000 });
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
