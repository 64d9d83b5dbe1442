import type { Redis } from 'ioredis';
import type { BenchOptions } from './options.ts';
import type { ProcessPool } from './process-pool.ts';
import type { Fixtures } from './fixtures.ts';

/** What one timed load run produced, before server-side figures are added. */
export interface LoadSample {
  /** 2xx responses. */
  ok: number;
  /** Non-2xx responses, connection errors and timeouts. */
  errors: number;
  /** Wall time of the run, seconds. */
  durationS: number;
  /** Latency of every response (ok or not), milliseconds. */
  latenciesMs: number[];
  /** Status codes other than 2xx, with counts, to explain errors. */
  errorStatuses: Record<string, number>;
}

/** Runs one timed load of `durationS` seconds. Built fresh for each run by a plan. */
export type Driver = (durationS: number) => Promise<LoadSample>;

/** Everything a plan may use: options, the private Redis, the process pool and the seeded fixtures. */
export interface BenchContext {
  options: BenchOptions;
  redisUrl: string;
  redis: Redis;
  pool: ProcessPool;
  fixtures: Fixtures;
  log(line: string): void;
}

/** One line of the table: a load shape against a set of server processes. */
export interface Plan {
  id: string;
  label: string;
  /** Pool keys of the processes whose CPU and memory count as "the server" for this line. */
  processes: string[];
  /** True when the line's processes use no store: its Redis figures are left out (they would only show other processes' background commands). */
  noStore?: boolean;
  /**
   * Prepares one run outside the timed window (tokens, refresh chains) and returns its
   * driver. Called again before every run, so nothing consumed by one run is reused.
   */
  prepare(ctx: BenchContext): Promise<Driver>;
}

/** A figure published by someone else, used as a baseline we cannot run here. */
export interface PublishedFigure {
  id: string;
  label: string;
  value: number;
  unit: string;
  source: string;
}

export interface Scenario {
  id: string;
  title: string;
  subject: Plan;
  baseline: Plan | PublishedFigure;
  /** subject ÷ baseline should reach this. */
  target: number;
  /** rps: requests per second; perCpuSecond: requests per second of server CPU (the "per vCPU" of sizing guides). */
  ratioOf: 'rps' | 'perCpuSecond';
  /** Endpoints the subject must serve; the scenario is skipped and reported when one is missing. */
  requires?: { method: string; path: string }[];
  notes?: string[];
}

export const isPublished = <T extends object>(b: T | PublishedFigure): b is PublishedFigure => 'value' in b && 'source' in b;
