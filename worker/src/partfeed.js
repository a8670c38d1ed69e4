/**
 * Validation while the parts arrive: the in-memory half of an upload session's Durable Object
 * (session-object.js).
 *
 * The session's files are one byte sequence for the core — metadata then rootfs, or the unified
 * file — cut into parts. A part that arrives when every byte before it has gone through the core
 * is fed to the core on its way into R2 (`Ticket.push`), so that by the time the last part is
 * stored the image is judged and `complete` has only the Report to read. Parts run in parallel
 * (`lxdimg publish --jobs 4` sends four at once); a part that is ahead of the next one to feed
 * waits, its body unread, while every part before it is on its way (in flight in this object),
 * and is then fed in turn: a client's parallel parts become one ordered stream through the core,
 * and their bytes overlap the core's work as one request's do.
 *
 * Whatever breaks that order only moves validation back to `complete`, which reads from R2 what
 * the core has not seen (sessions.js `validateSession`):
 * - a part ahead of a gap that nobody is sending (after ALONE_MS when it stays alone, else
 *   after GRACE_MS), or ahead of a part stored without being fed, is stored without being fed; the feed stops at the gap, and `complete`
 *   goes on from that offset of the assembled object;
 * - a part that fails half-fed (client gone, R2 error) leaves the core in a state that no stored
 *   bytes explain: the feed is dropped and `complete` reads everything from R2;
 * - a part sent again after it was fed gets a new ETag: `take` compares the ETags the feed saw
 *   with the ones the session assembles, and drops the feed on any difference;
 * - the first part of the first file sent (again) starts a new feed from byte 0;
 * - an evicted object (or a restarted runtime) has no feed at all.
 * So the Report at `complete` is always the Report of the bytes R2 assembles.
 */

/** How long a part ahead waits for a missing earlier part to be sent at all (while other parts
 * are in flight: a client sending in parallel). */
export const GRACE_MS = 2000;
/** How long a part that is alone in flight waits for the others of a parallel client to arrive
 * (their requests reach the object in any order). */
export const ALONE_MS = 300;
/** How long parts ahead wait while the feed makes no progress (a stalled client). */
export const STALL_MS = 30000;
/** How often waiting parts look at the clock (changes wake them at once). */
const TICK_MS = 250;

const key = (role, n) => `${role}/${n}`;

/** One session's feed: the core's inspection and how far it has read. */
class Feed {
  constructor(order, inspection, stored, early, now) {
    /** `[{role, parts}]` in the order the core reads them. */
    this.order = order;
    this.inspection = inspection;
    this.early = early;
    /** Keys of parts stored in R2 (from D1 when the feed started, then this object's). */
    this.stored = stored;
    /** Next part to feed: file index, part number; `offset` = bytes of that file fed. */
    this.file = 0;
    this.part = 1;
    this.offset = 0;
    /** ETags of the parts fed, by key. */
    this.fed = new Map();
    this.active = null;
    this.rootfsStarted = false;
    this.rejectedEarly = false;
    /** Stopped at a part boundary: no more feeding, what was fed stays good. */
    this.stopped = false;
    this.dropped = false;
    this.progressAt = now;
  }

  get done() {
    return this.file >= this.order.length;
  }

  nextKey() {
    return this.done ? null : key(this.order[this.file].role, this.part);
  }

  /** Keys from the next part up to (not including) `role/n`; null if that part is not ahead. */
  gap(role, n) {
    const target = this.order.findIndex((f) => f.role === role);
    if (target < this.file || (target === this.file && n <= this.part)) return null;
    const keys = [];
    for (let f = this.file, p = this.part; f < target || (f === target && p < n); ) {
      keys.push(key(this.order[f].role, p));
      if (++p > this.order[f].parts) {
        f++;
        p = 1;
      }
    }
    return keys;
  }

  drop() {
    if (this.dropped) return;
    this.dropped = true;
    this.inspection?.free();
    this.inspection = null;
  }
}

/** The feed of one upload session (one per Durable Object). */
export class PartFeeder {
  constructor({ now = () => Date.now(), graceMs = GRACE_MS, stallMs = STALL_MS } = {}) {
    this.now = now;
    this.graceMs = graceMs;
    this.stallMs = stallMs;
    this.feed = null;
    /** Keys of parts whose requests are in this object now. */
    this.inflight = new Set();
    this.wakers = [];
  }

  /** Wakes the parts waiting for their turn (something changed). */
  wake() {
    const w = this.wakers;
    this.wakers = [];
    for (const r of w) r();
  }

  #wait() {
    return new Promise((resolve) => {
      this.wakers.push(resolve);
      setTimeout(resolve, TICK_MS);
    });
  }

  /** Bytes of the image the core has read in order (null: no feed). */
  get validatedBytes() {
    const f = this.feed;
    if (!f || f.dropped) return null;
    let n = f.offset;
    for (let i = 0; i < f.file; i++) n += f.order[i].size;
    return n;
  }

  /**
   * A part request has arrived (`order`: the session's files `[{role, size, parts}]`, core order).
   * Resolves to a `Ticket` to feed its bytes through, or null to store it without feeding. The
   * caller must call `release(role, n, stored)` when the request ends, whatever happens.
   *   `newInspection()`   the core's inspection for a feed that starts here
   *   `loadStored()`      the keys (`role/part`) D1 has stored for the session (when a feed starts)
   *   `early(inspection)` whether the verdict is known to be a refusal (the rest of the image is
   *                       then stored without being read, and `complete` uses `finishEarly`)
   */
  async admit(order, role, n, { newInspection, loadStored, early = () => false }) {
    const k = key(role, n);
    this.inflight.add(k);
    this.wake();
    if (role === order[0].role && n === 1) {
      // The image's first bytes: a new feed from byte 0 (any earlier one is dropped).
      this.feed?.drop();
      this.feed = null;
      const stored = new Set(await loadStored());
      const feed = new Feed(order, newInspection(), stored, early, this.now());
      this.feed?.drop();
      this.feed = feed;
      return this.#claim(feed, k);
    }
    let missingSince = null;
    let firstStored = null;
    const first = key(order[0].role, 1);
    // A missing earlier part is worth waiting for while other parts are on their way (a client
    // sending in parallel, whose requests arrive in any order); a part that stays alone ahead of a
    // gap (a client sending out of order, one at a time) is stored after ALONE_MS.
    const waitMissing = () => {
      missingSince ??= this.now();
      return this.now() - missingSince < (this.inflight.size < 2 ? ALONE_MS : this.graceMs);
    };
    for (;;) {
      const f = this.feed;
      if (!f) {
        // No feed yet: the first part may be on its way (parallel parts start in any order) —
        // unless it is stored already (this object is new to a session under way).
        firstStored ??= (await loadStored()).includes(first);
        if (firstStored) return null;
        if (!this.inflight.has(first) && !waitMissing()) return null;
        await this.#wait();
        continue;
      }
      if (f.dropped || f.stopped || f.done) return null;
      if (f.nextKey() === k) {
        if (!f.active) return this.#claim(f, k);
      } else {
        const gap = f.gap(role, n);
        if (!gap) return null; // behind the feed: stored only (take() compares its ETag)
        let missing = false;
        for (const g of gap) {
          if (this.inflight.has(g)) continue;
          if (f.stored.has(g)) {
            // Stored without being fed: its bytes are only in R2 now; the feed ends there.
            f.stopped = true;
            this.wake();
            return null;
          }
          missing = true;
        }
        if (missing) {
          if (!waitMissing()) return null;
        } else {
          missingSince = null;
          // Every part before it is on its way: wait while the one being fed moves.
          if (this.now() - f.progressAt >= this.stallMs) return null;
        }
      }
      await this.#wait();
    }
  }

  #claim(f, k) {
    f.active = k;
    f.progressAt = this.now();
    const i = f.file;
    if (!f.rejectedEarly && i > 0 && !f.rootfsStarted && f.order[i].role !== "metadata") {
      f.inspection.startRootfs();
      f.rootfsStarted = true;
    }
    return new Ticket(this, f, k);
  }

  /** The request for `role/n` is over; `stored`: its bytes are in R2 now. */
  release(role, n, stored) {
    const k = key(role, n);
    this.inflight.delete(k);
    if (stored && this.feed) this.feed.stored.add(k);
    this.wake();
  }

  /**
   * `complete` takes the feed, if it read exactly the parts the session assembles (`parts`:
   * `[{role, part, etag}]` from D1) and none is being read now. Returns `{inspection, file,
   * offset, rootfsStarted, rejectedEarly}` — where `complete` goes on reading — or null (then
   * `complete` reads everything). The feeder holds no feed afterwards.
   */
  take(parts) {
    const f = this.feed;
    this.feed = null;
    this.wake();
    if (!f || f.dropped || f.active) {
      f?.drop();
      return null;
    }
    const etags = new Map(parts.map((p) => [key(p.role, p.part), p.etag]));
    for (const [k, etag] of f.fed) {
      if (etags.get(k) !== etag) {
        f.drop();
        return null;
      }
    }
    return { inspection: f.inspection, file: f.file, offset: f.offset, rootfsStarted: f.rootfsStarted, rejectedEarly: f.rejectedEarly };
  }

  /** Drops the feed (the session was deleted). */
  reset() {
    this.feed?.drop();
    this.feed = null;
    this.wake();
  }
}

/** The right to feed one part: `push` each chunk, then `done(etag)` once stored, or `fail()`. */
class Ticket {
  constructor(feeder, feed, k) {
    this.feeder = feeder;
    this.f = feed;
    this.key = k;
    this.over = false;
    this.pushed = 0;
  }

  push(chunk) {
    const f = this.f;
    if (f.dropped || this.over) return;
    this.pushed += chunk.byteLength;
    f.offset += chunk.byteLength;
    f.progressAt = this.feeder.now();
    if (f.rejectedEarly) return;
    try {
      const fed = f.inspection.push(chunk);
      if (fed && f.early(f.inspection)) f.rejectedEarly = true;
    } catch {
      // The core failed (core.js CoreError): the part is still stored; `complete` reads it all
      // again and answers the error.
      f.drop();
    }
  }

  /** The part is stored in R2 under `etag`: the feed moves to the next part. */
  done(etag) {
    if (this.over) return;
    this.over = true;
    const f = this.f;
    f.active = null;
    if (!f.dropped) {
      f.fed.set(this.key, etag);
      f.stored.add(this.key);
      if (++f.part > f.order[f.file].parts) {
        f.file++;
        f.part = 1;
        f.offset = 0;
      }
    }
    this.feeder.wake();
  }

  /**
   * The part was not stored whole. If the core read any of it, what it read has no stored
   * counterpart: the feed is dropped. Otherwise the part can simply be sent again.
   */
  fail() {
    if (this.over) return;
    this.over = true;
    this.f.active = null;
    if (this.pushed > 0) this.f.drop();
    this.feeder.wake();
  }
}
