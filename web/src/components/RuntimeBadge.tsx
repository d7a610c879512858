import type { Store } from "../api/types";

// A store whose pods sit on kwok's nodes only looks provisioned: nothing
// runs. The badge keeps a simulated Ready from being taken for a shop.
const titles: Record<string, string> = {
  Simulated: "Simulated: this store's pods are on kwok nodes, where no container runs. Ready proves the manifests, not the store.",
  Mixed: "Partly simulated: some of this store's pods are on kwok nodes, where no container runs.",
};

export function RuntimeBadge({ runtime }: { runtime: Store["runtime"] }) {
  if (!runtime || !titles[runtime]) return null;
  return (
    <span className="badge badge-simulated" data-runtime={runtime} title={titles[runtime]}>
      {runtime === "Mixed" ? "partly simulated" : "simulated"}
    </span>
  );
}
