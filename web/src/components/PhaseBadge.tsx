import type { Phase } from "../api/types";

const labels: Record<Phase, string> = {
  Pending: "Pending",
  Provisioning: "Provisioning",
  Ready: "Ready",
  Failed: "Failed",
  Deleting: "Deleting",
  ComingSoon: "Coming soon",
};

export function PhaseBadge({ phase }: { phase: Phase }) {
  return (
    <span className={`badge badge-${phase.toLowerCase()}`} data-phase={phase}>
      {labels[phase] ?? phase}
    </span>
  );
}
