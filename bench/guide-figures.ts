// The ns/op published in the performance guide's "Benchmark Results" (a shared reference document,
// not in this repository), by benchmark name. They come from the Go reference gateway (`go test
// -bench`, GOMAXPROCS 8, an unknown machine): a yardstick, not a like-for-like measurement of this code.

export const GUIDE_NS_PER_OP: Readonly<Record<string, number>> = {
  Pool_Get: 1200,
  Pool_Put: 800,
  SessionManager_Add: 2500,
  SessionManager_Get: 600,
  SessionManager_Remove: 1000,
  Limiter_Allow: 150,
  ParseClientMessageHeader: 200,
  ReadFullPacket: 500,
  WriteServerMessage_Original: 250,
  WriteServerMessage_WithTrace: 420,
};

/**
 * The guide's figure for a benchmark: "Name" and its variants "Name/variant" share the figure of
 * "Name" (e.g. WriteServerMessage_Original/64B). undefined for names the guide does not list.
 */
export function guideFigure(benchmark: string): number | undefined {
  const slash = benchmark.indexOf("/");
  return GUIDE_NS_PER_OP[slash < 0 ? benchmark : benchmark.slice(0, slash)];
}

/** Guide figures with no benchmark yet, and why. */
export const SKIPPED: Readonly<Record<string, string>> = {};
