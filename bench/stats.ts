// Small statistics and formatting helpers for the benchmark tables.

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error("summarize: no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n: sorted.length, median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** Milliseconds with a sensible number of digits. */
export function ms(value: number): string {
  const size = Math.abs(value);
  if (size >= 100) return `${value.toFixed(0)} ms`;
  if (size >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

export function seconds(valueMs: number): string {
  const s = valueMs / 1000;
  if (s >= 3600) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 60) return `${(s / 60).toFixed(1)} min`;
  return `${s.toFixed(1)} s`;
}

export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export function bytes(value: number): string {
  if (value >= 1024 * 1024) return mib(value);
  if (value >= 1024) return `${(value / 1024).toFixed(2)} KiB (${value} B)`;
  return `${value} B`;
}

export function ratio(value: number): string {
  return `${value.toFixed(2)}x`;
}

/** "median (min–max, n=…)" with a formatter for the unit. */
export function spread(s: Summary, fmt: (v: number) => string): string {
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)}, n=${s.n})`;
}

export function verdict(met: boolean | undefined): string {
  if (met === undefined) return "not measured";
  return met ? "met" : "**not met**";
}

/** A GitHub-flavoured markdown table; cells must not contain "|" (they are escaped if they do). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
