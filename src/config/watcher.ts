import { type FSWatcher, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";

// Calls onChange (debounced) when a config file changes. It watches the file's directory, not the
// file: editors and config-map mounts replace files by rename, which a watch on the old inode misses.

export class ConfigWatcher {
  private watcher: FSWatcher | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly path: string,
    private readonly onChange: () => void,
    private readonly debounceMs = 250,
  ) {}

  start(): void {
    const full = resolve(this.path);
    const name = basename(full);
    this.watcher = watch(dirname(full), (_event, file) => {
      if (file !== null && file !== name && !file.startsWith("..data")) return; // ..data: Kubernetes config-map swap
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.onChange();
      }, this.debounceMs);
    });
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer !== null) clearTimeout(this.timer);
  }
}
