// Worker entry: reads and validates one config file off the gateway's event loop, so parsing a
// large file never stalls client traffic. The config is plain data (no class instances, no
// undefined, no Infinity), so JSON carries it back exactly; test/config/load.test.ts checks that.
import { ConfigError, type Env, loadConfigFile } from "./load.ts";

export interface LoadRequest {
  readonly path: string;
  readonly env: Env;
}

export type LoadReply =
  // JSON text, not objects: the receiving thread parses it far faster than it decodes a clone.
  // The rules come apart, RULES_PER_CHUNK to a text, so they can be parsed a chunk per turn.
  | {
      readonly kind: "loaded";
      readonly configJson: string;
      readonly ruleChunks: string[];
      readonly warnings: string[];
      readonly notActedOn: readonly string[];
    }
  | { readonly kind: "invalid"; readonly issues: ConfigError["issues"]; readonly source: string | undefined }
  | { readonly kind: "crashed"; readonly message: string };

const RULES_PER_CHUNK = 200;

declare const self: Worker;

self.onmessage = async (event: MessageEvent<LoadRequest>) => {
  const { path, env } = event.data;
  let reply: LoadReply;
  try {
    const { config, warnings, notActedOn } = await loadConfigFile(path, env);
    const rules = config.routing.rules;
    const ruleChunks: string[] = [];
    for (let i = 0; i < rules.length; i += RULES_PER_CHUNK) ruleChunks.push(JSON.stringify(rules.slice(i, i + RULES_PER_CHUNK)));
    const withoutRules = { ...config, routing: { ...config.routing, rules: [] } };
    reply = { kind: "loaded", configJson: JSON.stringify(withoutRules), ruleChunks, warnings, notActedOn };
  } catch (e) {
    reply = e instanceof ConfigError ? { kind: "invalid", issues: e.issues, source: e.source } : { kind: "crashed", message: String(e) };
  }
  self.postMessage(reply);
};
