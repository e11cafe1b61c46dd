// Why a dial failed, as an operator reads it: the kernel's or resolver's error code sorted into
// the few answers that call for different actions (start the backend, fix the name, check the
// network path).

export type DialFailure =
  /** Nothing listens at the port (ECONNREFUSED). */
  | "refused"
  /** The host name did not resolve. */
  | "dns"
  /** No answer within connection_pool.dial_timeout. */
  | "timeout"
  /** No route to the host or network. */
  | "unreachable"
  | "error";

export function classifyDialError(error: unknown): DialFailure {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  if (code === "ECONNREFUSED") return "refused";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code.startsWith("EAI_") || code.startsWith("DNS_")) return "dns";
  if (code === "ETIMEDOUT") return "timeout";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EADDRNOTAVAIL") return "unreachable";
  return "error";
}
