// What is at the default config path. Only "nothing" may start the demo: a directory or a dangling
// symlink there is a deployment mistake, and a gateway answering players from the demo would hide it.

import { lstat, readlink, stat } from "node:fs/promises";

export type DefaultPathState =
  | { readonly kind: "absent" }
  | { readonly kind: "file" }
  /** Something is there but it cannot be a config file: `problem` says what, after the path. */
  | { readonly kind: "unusable"; readonly problem: string };

/** Looks at `path` with lstat first, so a symlink is judged by where it points. */
export async function inspectDefaultPath(path: string): Promise<DefaultPathState> {
  let own;
  try {
    own = await lstat(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // ENOTDIR: "config" itself is a file, so nothing can be at config/config.yaml.
    if (err.code === "ENOENT" || err.code === "ENOTDIR") return { kind: "absent" };
    return { kind: "unusable", problem: `cannot be read (${err.message})` };
  }
  let target = own;
  if (own.isSymbolicLink()) {
    const to = await readlink(path).catch(() => "?");
    try {
      target = await stat(path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why = err.code === "ENOENT" ? "which does not exist" : err.code === "ELOOP" ? "a symlink loop" : `which cannot be read (${err.message})`;
      return { kind: "unusable", problem: `is a symlink to "${to}", ${why}` };
    }
  }
  if (target.isFile()) return { kind: "file" };
  const what = target.isDirectory() ? "a directory" : "not a regular file";
  return { kind: "unusable", problem: own.isSymbolicLink() ? `is a symlink to ${what}` : `is ${what}` };
}
