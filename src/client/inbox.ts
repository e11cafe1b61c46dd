// A bounded FIFO of received items with promise-based takers, for a client that tests and load
// tools read at their own pace. Overflow is an error, not silent loss: once an item is refused,
// every later take fails with the reason, because the stream the caller expects has a hole in it.

interface Taker<T> {
  resolve(item: T): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout> | null;
}

export class Inbox<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private readonly takers: Taker<T>[] = [];
  private failure: Error | null = null;
  private ended = false;

  constructor(readonly limit: number) {}

  /** Items waiting to be taken. */
  get length(): number {
    return this.items.length - this.head;
  }

  get error(): Error | null {
    return this.failure;
  }

  /** Hands the item to the oldest waiting taker or queues it; false (and failed) past the limit. */
  push(item: T): boolean {
    if (this.failure !== null) return false;
    const taker = this.takers.shift();
    if (taker !== undefined) {
      if (taker.timer !== null) clearTimeout(taker.timer);
      taker.resolve(item);
      return true;
    }
    if (this.length >= this.limit) {
      this.fail(new Error(`received-frame queue overflowed its bound of ${this.limit} frames; later frames were dropped`));
      return false;
    }
    this.items.push(item);
    return true;
  }

  /** Every pending and later take fails with error. */
  fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.rejectTakers(error);
  }

  /** No more items will come: takes fail once the queued items are used up. */
  end(why: () => Error): void {
    this.ended = true;
    if (this.takers.length > 0) this.rejectTakers(why());
  }

  take(timeoutMs: number, onTimeout: () => Error, onEnded: () => Error): Promise<T> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.length > 0) return Promise.resolve(this.shift());
    if (this.ended) return Promise.reject(onEnded());
    return new Promise<T>((resolve, reject) => {
      const taker: Taker<T> = { resolve, reject, timer: null };
      taker.timer = setTimeout(() => {
        const i = this.takers.indexOf(taker);
        if (i >= 0) this.takers.splice(i, 1);
        reject(onTimeout());
      }, timeoutMs);
      this.takers.push(taker);
    });
  }

  private shift(): T {
    const item = this.items[this.head] as T;
    this.items[this.head] = undefined; // let a large body be collected before the queue compacts
    this.head++;
    // Compact now and then instead of Array.shift per item (O(n) each on a long queue).
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  private rejectTakers(error: Error): void {
    for (const t of this.takers.splice(0)) {
      if (t.timer !== null) clearTimeout(t.timer);
      t.reject(error);
    }
  }
}
