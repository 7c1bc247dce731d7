// Medians, ranges and Markdown tables for the benchmark reports.

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** { median, min, max, n } of the numbers in xs. */
export function summary(xs) {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** Element-wise a[i] / b[i]: ratios of runs made side by side in the same repetition. */
export function pairedRatios(a, b) {
  return a.map((x, i) => x / b[i]);
}

export function fmt(x, digits = 1) {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 1000 && digits <= 1) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits);
}

/** "median (min–max)" of a summary. */
export function cell(s, digits = 1) {
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** A Markdown table from a header row and rows of strings. */
export function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}
