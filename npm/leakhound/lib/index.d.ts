// Types of the JSON documents leakhound prints with --json (docs/json.md,
// schema_version 1), and of the functions that return them. A test compiles
// real output against these types and every field path of docs/json.md.

/** A size: bytes, or a string with a unit (`'64kB'`, `'1MB'`, `'2MiB'`; kB = 1000 B, KiB = 1024 B). */
export type Size = number | string;
/** A duration: milliseconds, or a string with a unit (`'250ms'`, `'5s'`, `'2m'`). */
export type Duration = number | string;

export type Verdict = 'leak' | 'no-leak' | 'inconclusive';
export type Pattern =
  | 'async-context'
  | 'timers'
  | 'event-listeners'
  | 'sockets'
  | 'memoization'
  | 'object-keyed-map'
  | 'closure-capture'
  | 'per-key-collection'
  | 'global-collection'
  | 'unbounded-growth'
  | 'in-package';
export type EdgeType = 'property' | 'element' | 'context' | 'internal' | 'hidden' | 'shortcut' | 'weak';

// ---------------------------------------------------------------- diagnose

export interface SourceLocation {
  /** Script path or URL (`node:events`, `/app/src/server.js`, `file:///...`); null when V8 has no name. */
  file: string | null;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  script_id: number;
}

export interface SnapshotRead {
  file: string;
  nodes: number;
  total_size: number;
  max_id: number;
}

export interface Accumulator {
  /** Object id (`@id` in DevTools). */
  id: number;
  /** How the code names it: `requestLogs`, `bus._events.tick`. */
  name: string;
  class: string;
  /** Alive in each snapshot. */
  alive: boolean[];
  /** Entries in each snapshot (null where not counted). */
  entries: (number | null)[];
  /** Retained size in each snapshot (null where not counted). */
  retained: (number | null)[];
  grows_every_step: boolean;
  /** Other accumulators of the same shape folded in. */
  similar: number;
  /** The original variable name from a source map, when the code was minified. */
  original_name?: string;
  /** For a leak inside a package: how the app's code holds it (`ajv → Ajv._cache`). */
  held_as?: string;
}

/** An npm package, found from a script path or a source map's `sources`. */
export interface PackageRef {
  /** `lru-cache`, `@scope/name`. */
  name: string;
  /** From the package's package.json; null when its files are not on this machine. */
  version: string | null;
  path: string;
}

/** A known leak-prone use of a package (crates/sources/data/libraries.toml). */
export interface LibraryEntry {
  id: string;
  title: string;
  fix: string;
  docs?: string;
}

export interface RetainerStep {
  edge: string;
  edge_type: EdgeType;
  node_id: number;
  node: string;
  class: string;
  location?: SourceLocation;
  /** The unmapped location, when `location` was source-mapped. */
  generated_location?: SourceLocation;
  /** The npm package of the step's code. */
  package?: PackageRef;
  /** Original class or function name from a source map (minified code). */
  original_class?: string;
  /** Original name of a captured variable from a source map (minified code). */
  original_edge?: string;
}

export interface LeakedClass {
  class: string;
  count: number;
  bytes: number;
}

export interface Suspect {
  pattern: Pattern;
  /** The pattern in words. */
  title: string;
  accumulator: Accumulator;
  /** From a GC root, through the accumulator, to one leaked object. */
  retainer_path: RetainerStep[];
  path_text: string;
  /** First place in the app's own code on the way. */
  location: SourceLocation | null;
  classes: LeakedClass[];
  objects_per_step: number[];
  bytes_per_step: number[];
  survivors: number;
  survivor_bytes: number;
  /** How to fix it. */
  advice: string;
  /** The snapshot's own position, when `location` was source-mapped. */
  generated_location?: SourceLocation;
  /** The npm package whose code holds the accumulator; null when it is all the app's own code. */
  package: PackageRef | null;
  /** The name the app's own code holds the accumulating object by. */
  handle?: string;
  /** The app's own code holding it (source-mapped). */
  user_location?: SourceLocation;
  /** For a leak inside a package: where it accumulates in the package (source-mapped). */
  package_location?: SourceLocation;
  /** A known leak-prone use of a package recognised on the path. */
  library?: LibraryEntry;
  /** The part of `bytes_per_step` outside the JS heap (backing stores). */
  native_bytes_per_step: number[];
  /** E.g. "Buffers held by uploads (Map): +2.0 MB per step outside the JS heap". */
  outside_heap?: string;
  /** The top call stacks that allocated its leaked objects (empty without allocation stacks). */
  allocation_stacks: AllocationStack[];
  /** The innermost frame in the app's own code of the top stack, or null. */
  allocated_by?: { function: string; file: string; line: number; column: number } | null;
}

/** One allocating call stack of a suspect's leaked objects. */
export interface AllocationStack {
  objects: number;
  bytes: number;
  /** Innermost first. */
  frames: AllocationFrame[];
  /** Index of the innermost frame in the app's own code, or null. */
  user_frame?: number | null;
}

export interface AllocationFrame {
  function: string;
  /** Source-mapped when the script has a map (then `generated` is the snapshot's position). */
  file: string;
  line: number;
  column: number;
  generated?: { file: string; line: number; column: number };
  code?: 'user' | 'package' | 'node' | 'v8';
  package?: PackageRef | null;
}

/** A collection growing toward a bound it has not reached: not a suspect. */
export interface BoundedCollection {
  name: string;
  class: string;
  entries: number;
  max_entries: number;
  retained: number;
  max_bytes: number;
  evidence: 'preallocated' | 'field';
  note: string;
}

/** The snapshot diagnosis, as embedded in `run`'s `diagnosis`. */
export interface Diagnosis {
  verdict: 'leak' | 'no-leak';
  min_growth_bytes_per_step: number;
  /** Whether the last snapshot carries allocation stacks. */
  has_allocation_stacks: boolean;
  snapshots: SnapshotRead[];
  survivors: number;
  survivor_bytes: number;
  suspects: Suspect[];
  below_threshold: Suspect[];
  warnings: string[];
  /** This run's noise floor in objects per step. */
  noise_objects_per_step: number;
  bounded: BoundedCollection[];
}

/** `leakhound diagnose --json`. */
export interface DiagnoseReport extends Diagnosis {
  schema_version: 1;
  command: 'diagnose';
}

// ---------------------------------------------------------------- run / watch

export interface Trend {
  slope_per_sec: number;
  /** Bytes at t = 0 s. */
  intercept: number;
  n: number;
  mann_kendall_s: number;
  mann_kendall_z: number;
  p_value: number;
  significant_increasing: boolean;
}

/** The post-GC floor analysis (`run`'s `trend`, `watch`'s `analysis`). */
export interface FloorAnalysis {
  verdict: Verdict;
  reason: string;
  floors: number;
  trend: Trend | null;
  recent_trend: Trend | null;
  recent_floors: number;
  growth_bytes_per_hour: number | null;
  recent_growth_bytes_per_hour: number | null;
  average_rise_bytes_per_hour: number | null;
  p_value: number | null;
  longest_growth_run: number;
  early_signal: boolean;
  time_to_limit_s: number | null;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** One load round: `leakhound load --json` minus `schema_version`, `command`, `urls`, `method`. */
export interface LoadRound {
  requests: number;
  ok: number;
  non_2xx: number;
  errors: number;
  errors_by_kind?: Record<string, number>;
  error_examples?: Record<string, string>;
  status_codes: Record<string, number>;
  cancelled: number;
  interrupted: boolean;
  connections: number;
  threads: number;
  duration_s: number;
  requests_per_s: number;
  bytes_read: number;
  latency_ms: Latency;
}

export interface RunLoad {
  requests: number;
  ok: number;
  non_2xx: number;
  errors: number;
  requests_per_s: number;
  latency_ms: Latency;
  rounds: LoadRound[];
}

export interface RunSample {
  t: number;
  heap_used: number;
  heap_total: number;
  rss: number;
  external: number;
}

export interface RunFloor {
  t: number;
  heap_used: number;
  /** `external`, `arrayBuffers` and RSS at the same reading. */
  external: number;
  array_buffers: number;
  rss: number;
}

/** A growth as rates over its window, projected to an hour. */
export interface GrowthRate {
  name: string;
  bytes: number;
  objects: number | null;
  window_s: number;
  requests: number;
  bytes_per_request: number | null;
  objects_per_request: number | null;
  bytes_per_s: number;
  objects_per_s: number | null;
  projected_bytes_per_hour: number;
  /** `+32 B (1.0 objects) per request (+64.0 kB/s over 3.0 s): +115.2 MB/h at 1,000 req/s`. */
  text: string;
}

/** `run`'s growth rates and the `--max-growth-rate` gate. */
export interface RunRates {
  traffic: { requests_per_s: number; source: '--at' | 'measured' } | null;
  suspects: GrowthRate[];
  native: GrowthRate | null;
  projected_bytes_per_hour: number;
  max_growth_rate_bytes_per_hour: number | null;
  over_max_growth_rate: boolean;
}

/** Memory outside the JS heap (`external`) that grew in every round. */
export interface NativeGrowth {
  external_per_step: number[];
  array_buffers_per_step: number[];
  rss_per_step: number[];
  heap_per_step: number[];
  note: string;
}

export interface Phase {
  name: string;
  start: number;
  end: number;
}

export interface SnapshotTaken {
  file: string;
  t: number;
  bytes: number;
}

/** `leakhound run --json`. */
export interface RunReport {
  schema_version: 1;
  command: 'run';
  app: string;
  node_version: string;
  pid: number;
  started_at: number;
  verdict: Verdict;
  reason: string;
  growth_bytes_per_hour: number | null;
  /** The post-GC heap's change from the first snapshot to the last, with its window. */
  growth: { bytes: number; window_s: number; rounds: number; requests: number };
  growth_per_round_bytes: number | null;
  growth_per_request_bytes: number | null;
  /** Why the load is no evidence about the app, or null. */
  evidence_problem: string | null;
  /** Growth per request and per second, projected to an hour; the rate gate. */
  rates: RunRates;
  /** `external` rising in every round over a flat heap, or null. */
  native_growth: NativeGrowth | null;
  /** Only in the partial document printed after Ctrl-C (exit 130). */
  interrupted?: boolean;
  heap_growth_bytes: number;
  heap_size_limit: number;
  time_to_limit_s: number | null;
  suspects: Suspect[];
  diagnosis: Diagnosis;
  trend: FloorAnalysis;
  load: RunLoad | null;
  samples: RunSample[];
  floors: RunFloor[];
  phases: Phase[];
  snapshots: SnapshotTaken[];
  /** The container limit, the limit reached first, RSS drift and the doctor's findings. */
  container: ContainerView;
  /** `--mode tracking`: the round boundaries and the live heap by phase of allocation; null otherwise. */
  tracking: TrackingView | null;
}

export interface TrackingView {
  track_allocations: boolean;
  boundaries: {
    after: string;
    last_seen_object_id: number;
    live_bytes: number;
    live_bytes_by_phase: number[];
  }[];
}

export interface DoctorFinding {
  id: string;
  severity: 'info' | 'warning' | 'error';
  message: string;
}

/** What `watch` and `run` report about the container the process lives in. */
export interface ContainerView {
  container_limit_bytes: number | null;
  charge_bytes: number | null;
  rss_growth_bytes_per_hour: number | null;
  rss_p_value: number | null;
  time_to_heap_limit_s: number | null;
  time_to_container_limit_s: number | null;
  first_limit: 'heap' | 'container' | null;
  time_to_first_limit_s: number | null;
  gc_drift: string | null;
  external_growth: string | null;
  recommended_max_old_space_size_mb: number | null;
  findings: DoctorFinding[];
}

/** `leakhound snapshot --json`. */
export interface SnapshotReport {
  schema_version: 1;
  command: 'snapshot';
  file: string;
  bytes: number;
  seconds: number;
  pid: number;
  node_version: string;
  gc: boolean;
  heap_used_before: number;
}

export interface WatchTarget {
  pid: number;
  node_version: string;
  argv: string[];
  started_by_leakhound: boolean;
}

export interface WatchSample {
  t_s: number;
  heap_used: number;
  heap_total: number;
  rss: number;
  external: number;
  array_buffers: number;
  minor_gcs: number;
  major_gcs: number;
  gc_ms: number;
}

export interface WatchFloor {
  t_s: number;
  heap_used: number;
  heap_total: number;
}

/** `leakhound watch --json`. */
export interface WatchReport {
  schema_version: 1;
  command: 'watch';
  target: WatchTarget;
  interval_s: number;
  elapsed_s: number;
  ended: 'duration' | 'interrupted' | 'target-exited';
  floor_source: 'gc-observer' | 'forced-gc';
  heap_size_limit: number;
  gcs: { minor: number; major: number; other: number; gc_ms: number };
  samples: WatchSample[];
  floors: WatchFloor[];
  verdict: Verdict;
  reason: string;
  growth_bytes_per_hour: number | null;
  recent_growth_bytes_per_hour: number | null;
  /** `external` fitted over the samples, bytes per hour. */
  external_growth_bytes_per_hour: number | null;
  /** The verdict rests on `external` growing while the heap floor does not. */
  outside_heap: boolean;
  p_value: number | null;
  time_to_limit_s: number | null;
  early_signal: boolean;
  longest_growth_run: number;
  min_growth_bytes_per_hour: number;
  analysis: FloorAnalysis;
  floors_dropped: number;
  started_at: number;
  container: ContainerView;
}

// ---------------------------------------------------------------- functions

export interface CommonOptions {
  /** Working directory of the binary (and of the app it starts). */
  cwd?: string;
  /** Extra environment variables (merged over process.env). */
  env?: Record<string, string>;
  /** Extra command-line flags, passed as they are. */
  args?: string[];
  /** Abort: the binary gets SIGINT, stops what it started, and the promise rejects. */
  signal?: AbortSignal;
  /** 'pipe' (default): the binary's stderr (and a started app's output) is kept for errors; 'inherit': shown. */
  stderr?: 'pipe' | 'inherit';
}

export interface RunOptions extends CommonOptions {
  /** The app, e.g. `['node', 'server.js']`. */
  command: string[];
  /** URL(s) to load (rotated). */
  load?: string | string[];
  /** Your own load command instead of the built-in driver. */
  loadCmd?: string;
  connections?: number;
  method?: string;
  headers?: string | string[];
  body?: string;
  /** Requests per round. */
  requests?: number;
  roundDuration?: Duration;
  warmup?: number;
  /** At least 3. */
  snapshots?: number;
  interval?: Duration;
  gcEvery?: Duration;
  readyTimeout?: Duration;
  minGrowth?: Size;
  /** CI gate: also a leak when the post-GC heap grew more than this. */
  maxGrowth?: Size;
  /** Keep the snapshots in this folder. */
  keep?: string;
  html?: string;
  /** Where the app's scripts, source maps and node_modules are, when not at the recorded paths. */
  sourceRoot?: string;
  /** An extra library table (TOML, the format of leakhound's libraries.toml). */
  libraries?: string;
}

export interface DiagnoseOptions extends CommonOptions {
  minGrowth?: Size;
  top?: number;
  exact?: boolean;
  threads?: number;
  html?: string;
  /** Where the snapshots' scripts, source maps and node_modules are, when taken on another machine. */
  sourceRoot?: string;
  /** An extra library table (TOML, the format of leakhound's libraries.toml). */
  libraries?: string;
}

export interface TargetOptions extends CommonOptions {
  /** A running Node process (leakhound sends it SIGUSR1 to open its inspector). */
  pid?: number;
  port?: number;
  /** An inspector address: `ws://...`, `HOST:PORT` or `PORT` (loopback). */
  inspect?: string;
  /** Start this command (e.g. `['node', 'app.js']`) and stop it at the end. */
  command?: string[];
}

export interface SnapshotOptions extends TargetOptions {
  /** The file to write (0600). */
  output: string;
  gc?: boolean;
  delay?: Duration;
}

export interface WatchOptions extends TargetOptions {
  interval?: Duration;
  duration?: Duration;
  forceGc?: boolean;
  /** Slowest floor growth called a leak, e.g. `'1MB/h'`. */
  minGrowth?: string;
  html?: string;
}

export declare function run(options: RunOptions): Promise<RunReport>;
export declare function diagnose(files: string[], options?: DiagnoseOptions): Promise<DiagnoseReport>;
export declare function snapshot(options: SnapshotOptions): Promise<SnapshotReport>;
export declare function watch(options: WatchOptions): Promise<WatchReport>;
/** Path of the binary the API and the `leakhound` command use. */
export declare function findBinary(): string;

export declare class LeakhoundError extends Error {
  /** The binary's exit status (2: bad input or runtime error, with one line on stderr). */
  exitCode: number | null;
  signal: string | null;
  stderr: string;
  args: string[];
}
export declare class BinaryNotFoundError extends Error {
  code: 'LEAKHOUND_BINARY_NOT_FOUND';
}
