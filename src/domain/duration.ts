/**
 * Lifetimes written the way the API guide writes them: a whole number and a unit,
 * `90d`, `12h`, `30m`. Anything else is refused rather than guessed at.
 */
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000 } as const;
const DURATION = /^([1-9][0-9]{0,5})([dhm])$/;

/** Milliseconds for `<n>d`, `<n>h` or `<n>m`; null when the text is not one of those. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text);
  if (!match) return null;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** The largest whole unit that expresses ms exactly (90 days → `90d`), for messages. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${Math.ceil(ms / 1000)}s`;
}
