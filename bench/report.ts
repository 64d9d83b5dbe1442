import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { medianOf, type RunResult } from './lib/measure.ts';
import { ratio } from './lib/stats.ts';
import { isPublished, type Plan, type PublishedFigure, type Scenario } from './lib/types.ts';

export interface LineResult {
  planId: string;
  label: string;
  runs: RunResult[];
  /** Median of each figure over the runs (errors summed). */
  median: RunResult;
}

export interface ScenarioResult {
  id: string;
  title: string;
  target: number;
  ratioOf: Scenario['ratioOf'];
  subject: LineResult;
  baseline: LineResult | PublishedFigure;
  /** subject ÷ baseline on the ratioOf figure, from the medians. */
  ratio: number;
  met: boolean;
  notes: string[];
}

export interface StartupRecord {
  name: string;
  startupMs: number;
  idleRssMiB: number;
  note?: string;
}

export interface SoakRecord {
  durationS: number;
  /** RSS samples of the instance under client_credentials load, MiB, every few seconds. */
  samplesMiB: { atS: number; rssMiB: number }[];
  rps: number;
  errors: number;
  /** Last sample minus the first one taken after the first 10 % of the soak, MiB. */
  growthMiB: number;
}

export interface BenchReport {
  generatedAt: string;
  machine: { cpus: number; cpuModel: string; node: string; redis: string; loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  settings: { durationS: number; warmupS: number; runs: number; connections: number; soakS: number; quick: boolean; serverLogLevel: string };
  scenarios: ScenarioResult[];
  /** Scenarios of the issue that did not run, with the reason. */
  notRun: { title: string; reason: string }[];
  startup: StartupRecord[];
  memory: { server: string; idleMiB: number; afterScenariosMiB: number; soak?: SoakRecord };
  notes: string[];
}

/** What a line contributes to its scenario's ratio. */
const figureOf = (r: RunResult, of: Scenario['ratioOf']): number => (of === 'perCpuSecond' ? r.perCpuSecond : r.rps);

export function lineResult(plan: Plan, runs: RunResult[]): LineResult {
  return { planId: plan.id, label: plan.label, runs, median: medianOf(runs) };
}

export function scenarioResult(scenario: Scenario, subject: LineResult, baseline: LineResult | PublishedFigure): ScenarioResult {
  const baselineValue = isPublished(baseline) ? baseline.value : figureOf(baseline.median, scenario.ratioOf);
  const r = ratio(figureOf(subject.median, scenario.ratioOf), baselineValue);
  return {
    id: scenario.id,
    title: scenario.title,
    target: scenario.target,
    ratioOf: scenario.ratioOf,
    subject,
    baseline,
    ratio: r,
    met: Number.isFinite(r) && r >= scenario.target,
    notes: scenario.notes ?? [],
  };
}

const fixed = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
const whole = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');

const HEADER = ['scenario / line', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'CPU s/1k req', 'RSS MiB', 'Redis cmd/req', 'ratio (target)'];

function lineCells(name: string, r: RunResult): string[] {
  return [name, whole(r.rps), fixed(r.p50Ms, 1), fixed(r.p99Ms, 1), String(r.errors), fixed(r.cpuSPer1000, 3), whole(r.rssMiB), fixed(r.redisPerRequest, 2)];
}

function ratioCell(s: ScenarioResult): string {
  const unit = s.ratioOf === 'perCpuSecond' ? ' per CPU-s' : '';
  return `${fixed(s.ratio, 2)}${unit} (≥ ${s.target}) ${s.met ? 'met' : 'NOT met'}`;
}

/** The rows of the table: each scenario's subject line, then its baseline line. */
export function tableRows(results: ScenarioResult[]): string[][] {
  const rows: string[][] = [];
  for (const s of results) {
    rows.push([...lineCells(s.title, s.subject.median), ratioCell(s)]);
    if (s.ratioOf === 'perCpuSecond') {
      rows.push([`  ↳ ours per vCPU (req/s per server CPU-s)`, whole(s.subject.median.perCpuSecond), '', '', '', '', '', '', '']);
    }
    if (isPublished(s.baseline)) {
      rows.push([`  ↳ ${s.baseline.label}`, String(s.baseline.value), '', '', '', '', '', '', s.baseline.unit]);
    } else {
      rows.push([...lineCells(`  ↳ ${s.baseline.label}`, s.baseline.median), '']);
    }
  }
  return rows;
}

/** A plain-text table with aligned columns (numbers right-aligned). */
export function formatTable(rows: string[][], header: string[] = HEADER): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((cell, i) => (i === 0 || i === r.length - 1 ? (cell ?? '').padEnd(widths[i]) : (cell ?? '').padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The same rows as a Markdown table, for the README. */
export function formatMarkdown(rows: string[][], header: string[] = HEADER): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|').replace(/^ +/, '');
  return [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 || i === header.length - 1 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

/** Everything printed after the runs: the table, start-up, memory, what did not run, and the caveats. */
export function formatReport(report: BenchReport): string {
  const out: string[] = [];
  const s = report.settings;
  out.push(`nopesight-auth bench — ${report.generatedAt}${s.quick ? ' (QUICK MODE: indicative only)' : ''}`);
  out.push(`machine: ${report.machine.cpus} × ${report.machine.cpuModel}; Node ${report.machine.node}; Redis ${report.machine.redis}; load average at start ${report.machine.loadAverageAtStart.map((v) => v.toFixed(2)).join(' ')}, at end ${report.machine.loadAverageAtEnd.map((v) => v.toFixed(2)).join(' ')}`);
  out.push(`load: ${s.connections} connections, ${s.warmupS} s warm-up, ${s.runs} × ${s.durationS} s runs per line, median shown (errors: total over the runs)`);
  out.push('');
  out.push(formatTable(tableRows(report.scenarios)));
  out.push('');
  out.push('start-up to ready (spawn → first 200 from the readiness URL):');
  for (const p of report.startup) out.push(`  ${p.name}: ${whole(p.startupMs)} ms, idle RSS ${whole(p.idleRssMiB)} MiB${p.note ? ` (${p.note})` : ''}`);
  const m = report.memory;
  out.push(`memory of ${m.server}: idle ${whole(m.idleMiB)} MiB, after all scenarios ${whole(m.afterScenariosMiB)} MiB`);
  if (m.soak) {
    out.push(`  soak: ${m.soak.durationS} s of client_credentials at ${whole(m.soak.rps)} req/s, ${m.soak.errors} errors; RSS ${m.soak.samplesMiB.map((x) => whole(x.rssMiB)).join(' → ')} MiB; growth after warm-up ${fixed(m.soak.growthMiB, 1)} MiB`);
  }
  if (report.notRun.length) {
    out.push('not run:');
    for (const n of report.notRun) out.push(`  ${n.title}: ${n.reason}`);
  }
  out.push('notes:');
  for (const note of [...report.notes, ...report.scenarios.flatMap((x) => x.notes.map((n) => `${x.id}: ${n}`))]) out.push(`  - ${note}`);
  return out.join('\n');
}

export function writeJson(file: string, report: BenchReport): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}
