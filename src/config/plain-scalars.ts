// Go's yaml.v3 decodes a plain scalar into a string field as written: `password: 0123` is "0123".
// The yaml library has already turned it into the number 123, so string keys look up the text.

import { type Document, isScalar, visit } from "yaml";
import { segments } from "./locate.ts";

/**
 * A lookup from a key path ("redis.password", "routing.rules[2].service_name") to the source text
 * of the plain scalar there. Built on first use, which only a number or boolean in a string key
 * needs: a second toJS of a copy in which every such scalar is its own text (merges and aliases
 * resolve as in the first).
 */
export function plainScalarTexts(doc: Document): (path: string) => string | undefined {
  let asWritten: unknown;
  let built = false;
  return (path) => {
    if (!built) {
      built = true;
      const copy = doc.clone();
      visit(copy, {
        Scalar(_, node) {
          if (isScalar(node) && node.type === "PLAIN" && node.source !== undefined && (typeof node.value === "number" || typeof node.value === "boolean")) {
            node.value = node.source;
          }
        },
      });
      try {
        asWritten = copy.toJS();
      } catch {
        asWritten = undefined; // the first toJS succeeded, so this cannot fail on aliases; be safe anyway
      }
    }
    let v = asWritten;
    for (const seg of segments(path) ?? []) {
      if (typeof v !== "object" || v === null) return undefined;
      v = (v as Record<string | number, unknown>)[seg];
    }
    return typeof v === "string" ? v : undefined;
  };
}
