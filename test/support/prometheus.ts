/**
 * A strict parser of the Prometheus text exposition format 0.0.4 for tests (the same one
 * test/agent/health.test.ts carries inline): every line is a HELP, a TYPE, or a sample of the
 * family last declared; names, label sets, escapes and values are checked; histograms must be
 * cumulative and end in +Inf.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  help?: string;
  type: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = ["counter", "gauge", "histogram", "summary", "untyped"];
const SUFFIXES: Record<string, string[]> = {
  counter: [""],
  gauge: [""],
  untyped: [""],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text !== "" && !text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, Family>();
  const seriesSeen = new Set<string>();
  let current: Family | undefined;
  const lines = text.split("\n").slice(0, -1);
  lines.forEach((line, i) => {
    const where = `line ${i + 1} ${JSON.stringify(line)}`;
    if (line.startsWith("#")) {
      const m = line.match(/^# (HELP|TYPE) (\S+) ?(.*)$/);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
      let fam = families.get(name);
      if (fam && fam !== current) throw new Error(`${where}: family ${name} is not contiguous`);
      if (!fam) {
        fam = { name, type: "untyped", samples: [] };
        families.set(name, fam);
      }
      current = fam;
      if (kind === "HELP") {
        if (fam.help !== undefined) throw new Error(`${where}: second HELP`);
        fam.help = unescape(rest, false, where);
      } else {
        if (!TYPES.includes(rest)) throw new Error(`${where}: unknown type`);
        if (fam.samples.length) throw new Error(`${where}: TYPE after samples`);
        fam.type = rest;
      }
      return;
    }
    if (line === "") return; // the format ignores empty lines
    if (line.trim() === "") throw new Error(`${where}: whitespace-only line`);
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/);
    if (!m) throw new Error(`${where}: not a sample`);
    const [, name, labelText, valueText] = m;
    if (!current) throw new Error(`${where}: sample before any TYPE`);
    const fam = current;
    const suffix = name.slice(fam.name.length);
    if (!name.startsWith(fam.name) || !SUFFIXES[fam.type].includes(suffix)) {
      throw new Error(`${where}: sample ${name} does not belong to ${fam.type} ${fam.name}`);
    }
    const labels = labelText ? parseLabels(labelText.slice(1, -1), where) : {};
    const value = parseValue(valueText, where);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seriesSeen.has(key)) throw new Error(`${where}: duplicate series`);
    seriesSeen.add(key);
    fam.samples.push({ name, labels, value });
  });
  for (const fam of families.values()) {
    if (fam.type === "histogram") checkHistogram(fam);
  }
  return families;
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([^=\s]+)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new Error(`${where}: bad label set`);
    if (!LABEL_NAME.test(m[1]) || m[1].startsWith("__")) throw new Error(`${where}: label name`);
    if (m[1] in labels) throw new Error(`${where}: duplicate label ${m[1]}`);
    labels[m[1]] = unescape(m[2], true, where);
    pos = re.lastIndex;
    if (m[3] === "" && pos < text.length) throw new Error(`${where}: bad label set`);
  }
  return labels;
}

function unescape(s: string, quotes: boolean, where: string): string {
  return s.replace(/\\(.)/g, (_all, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    if (c === '"' && quotes) return '"';
    throw new Error(`${where}: bad escape \\${c}`);
  });
}

/** Values as Prometheus reads them (Go's strconv.ParseFloat): special values in any case. */
function parseValue(text: string, where: string): number {
  const special = text.toLowerCase();
  if (special === "+inf" || special === "inf" || special === "+infinity") return Infinity;
  if (special === "-inf" || special === "-infinity") return -Infinity;
  if (special === "nan") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: value`);
  return Number(text);
}

function checkHistogram(fam: Family): void {
  const groups = new Map<string, Sample[]>();
  for (const s of fam.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (s.name.endsWith("_bucket") && le === undefined)
      throw new Error(`${fam.name}: bucket without le`);
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const samples of groups.values()) {
    const buckets = samples.filter((s) => s.name.endsWith("_bucket"));
    const bounds = buckets.map((b) => parseValue(b.labels.le, fam.name));
    if (bounds.at(-1) !== Infinity) throw new Error(`${fam.name}: no +Inf bucket`);
    for (let i = 1; i < buckets.length; i++) {
      if (!(bounds[i] > bounds[i - 1]) || buckets[i].value < buckets[i - 1].value) {
        throw new Error(`${fam.name}: buckets not cumulative`);
      }
    }
    const count = samples.find((s) => s.name.endsWith("_count"));
    if (!count || count.value !== buckets.at(-1)!.value) throw new Error(`${fam.name}: count`);
  }
}

/** The value of one series, or undefined when it does not exist. */
export function valueOf(
  fams: Map<string, Family>,
  family: string,
  name: string,
  labels: Record<string, string> = {},
) {
  return fams
    .get(family)
    ?.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))
    ?.value;
}
