import type { Session } from "./session.ts";

// The sessions that share one backend link, as an intrusive doubly linked list threaded through
// the sessions' own prevOnLink/nextOnLink fields. A JS Set costs 50-100 bytes per entry in its
// hash table (measured in a heap snapshot at 5,000 sessions); two fields on the session cost 16,
// and add, remove and the membership test stay O(1). A session is in at most one list at a time
// (its link's), which is what makes the fields unambiguous.

export class SessionList {
  first: Session | null = null;
  size = 0;

  add(s: Session): void {
    const head = this.first;
    s.prevOnLink = null;
    s.nextOnLink = head;
    if (head !== null) head.prevOnLink = s;
    this.first = s;
    this.size++;
  }

  /** True when s is in this list (given that s is in no other list). */
  has(s: Session): boolean {
    return s.prevOnLink !== null || this.first === s;
  }

  /** Removes s; false (changing nothing) when it is not in this list. */
  remove(s: Session): boolean {
    if (!this.has(s)) return false;
    const prev = s.prevOnLink;
    const next = s.nextOnLink;
    if (prev === null) this.first = next;
    else prev.nextOnLink = next;
    if (next !== null) next.prevOnLink = prev;
    s.prevOnLink = s.nextOnLink = null;
    this.size--;
    return true;
  }

  /** Empties the list and returns what it held (a connection was lost: its sessions move or close). */
  drain(): Session[] {
    const out: Session[] = [];
    for (let s = this.first; s !== null; ) {
      const next = s.nextOnLink;
      s.prevOnLink = s.nextOnLink = null;
      out.push(s);
      s = next;
    }
    this.first = null;
    this.size = 0;
    return out;
  }
}
