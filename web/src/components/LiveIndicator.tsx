import type { StreamState } from "../events";

const text: Record<StreamState, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  closed: "Not live",
};

export function LiveIndicator({ state }: { state: StreamState }) {
  return (
    <span className={`live live-${state}`} role="status" data-testid="live">
      {text[state]}
    </span>
  );
}
