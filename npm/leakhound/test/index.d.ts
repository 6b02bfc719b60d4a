import type { DiagnoseReport, Suspect, Size } from '../lib/index.js';

export interface NoLeakOptions {
  /** Calls of fn per round (default 100). */
  iterations?: number;
  /** Rounds after the warm-up, each ending with a GC and a snapshot (default 3, at least 2). */
  rounds?: number;
  /** Warm-up calls before the first snapshot (default: iterations). */
  warmup?: number;
  /** Smallest growth per round of one object group that counts as a leak (default '4kB'). */
  minGrowth?: Size;
  /** Also fail when the heap after GC grew more than this from the first snapshot to the last. */
  maxGrowth?: Size;
  /** Keep the snapshots (true: in a temporary folder; a string: in that folder) for DevTools. */
  keep?: boolean | string;
}

export interface NoLeakReport {
  verdict: 'leak' | 'no-leak';
  diagnosis: DiagnoseReport;
  /** heapUsed after a full GC at each snapshot. */
  floors: number[];
  heapGrowth: number;
  seconds: number;
  /** The snapshot files when kept. */
  snapshots: string[];
}

export interface ListenerProblem {
  emitter: string;
  event: string;
  before: number;
  after: number;
}

export interface OpenHandle {
  kind: string;
  detail: string;
  callback: string | null;
  openedAt: string;
}

export interface HandlesOptions {
  /** Milliseconds to let close callbacks run after the teardown (default 20). */
  settle?: number;
}

/** A function under test; it may return a teardown function (run and awaited after it). */
export type Checked = () => unknown | Promise<unknown>;

/** Rejects with an AssertionError (`.leakhound`: the report) when what fn leaves behind grows in every round. */
export declare function expectNoLeak(fn: (iteration: number) => unknown | Promise<unknown>, options?: NoLeakOptions): Promise<NoLeakReport>;
/** Rejects with an AssertionError naming emitter, event and listener location when a listener count is off its baseline. */
export declare function expectListenersRestored(fn: Checked): Promise<{ emitters: number; problems: ListenerProblem[] }>;
/** Rejects with an AssertionError naming each timer, socket, server or watcher fn left open. */
export declare function expectHandlesClosed(fn: Checked, options?: HandlesOptions): Promise<{ open: OpenHandle[] }>;
export declare function describeSuspect(suspect: Suspect, index: number): string;
/** Why in-process snapshots are unreliable under the current runner, or null. */
export declare function unreliableReason(): string | null;
