import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { App } from "./App";
import { ApiError } from "./api/problem";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // The streams keep data fresh; a refetch on focus catches up after sleep.
      staleTime: 10_000,
      // A problem the caller caused (4xx) does not go away by asking again.
      retry: (count, err) => count < 2 && !(err instanceof ApiError && err.status > 0 && err.status < 500),
    },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
);
