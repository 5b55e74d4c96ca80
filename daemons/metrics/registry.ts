// A small Prometheus metrics registry, without dependencies: counters and gauges with fixed label sets, and the
// text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/). Every metric
// declares the label values it may take up front, so the registry's size is fixed when the daemons start: a
// value that was not declared is dropped (and reported once), never added, so no input can make it grow
// (docs/metrics.md).

export type Labels = Readonly<Record<string, string>>;
type MetricType = "counter" | "gauge";

/** The text format's content type (what Prometheus asks for with Accept and accepts back). */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value in the text format: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A HELP text in the text format: backslash and line feed escaped (quotes stay). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as Prometheus reads it: integers plainly, NaN and the infinities by their Go names. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

interface Series {
  readonly labels: Labels;
  /** `{a="x",b="y"}`, or "" without labels: the sample's text after the name, and the series' key. */
  readonly text: string;
  value: number | undefined;
}

/** One metric: its name, help, type and the series it may have. */
abstract class Metric {
  private readonly series = new Map<string, Series>();
  private readonly labelNames: readonly string[];
  private warned = false;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    /** Every label combination the metric may take; [] for a metric without labels (one series). */
    allowed: readonly Labels[],
    private readonly warn: (message: string) => void,
    /** Counters start every declared series at 0 (so rates work from the start); gauges start absent. */
    initial: number | undefined,
  ) {
    if (!NAME.test(name)) throw new Error(`metrics: bad metric name ${JSON.stringify(name)}`);
    const combos = allowed.length === 0 ? [{}] : allowed;
    this.labelNames = Object.keys(combos[0]).sort();
    for (const labels of combos) {
      const names = Object.keys(labels).sort();
      if (names.join(",") !== this.labelNames.join(",") || names.some((n) => !LABEL_NAME.test(n)))
        throw new Error(`metrics: ${name}: every series needs the labels ${this.labelNames.join(", ")}`);
      const text = labelText(labels, this.labelNames);
      if (this.series.has(text)) throw new Error(`metrics: ${name}: series ${text} declared twice`);
      this.series.set(text, { labels, text, value: initial });
    }
  }

  /** The declared series for these labels, or undefined (reported once) for a combination never declared. */
  protected find(labels: Labels): Series | undefined {
    const series = this.series.get(labelText(labels, this.labelNames));
    if (!series && !this.warned) {
      this.warned = true;
      this.warn(`metrics: ${this.name}: dropping undeclared labels ${JSON.stringify(labels)}`);
    }
    return series;
  }

  /** The current value of a series (undefined: absent or undeclared); for tests and the daemons' own use. */
  get(labels: Labels = {}): number | undefined {
    return this.series.get(labelText(labels, this.labelNames))?.value;
  }

  /** HELP, TYPE and one line per series that has a value, in the order the series were declared. */
  render(): string {
    const samples = [...this.series.values()].filter((s) => s.value !== undefined);
    if (samples.length === 0) return "";
    return (
      `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n` +
      samples.map((s) => `${this.name}${s.text} ${formatValue(s.value as number)}\n`).join("")
    );
  }
}

function labelText(labels: Labels, names: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((n) => `${n}="${escapeLabelValue(labels[n] ?? "")}"`).join(",")}}`;
}

/** A value that only goes up (until the process restarts). Its name ends with `_total`. */
export class Counter extends Metric {
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`metrics: ${this.name}: a counter cannot go down (${by})`);
    const series = this.find(labels);
    if (series) series.value = (series.value ?? 0) + by;
  }

  /** One series, found once: for hot paths (a passdb lookup), where building the label key per call shows. */
  handle(labels: Labels): { inc(): void } {
    const series = this.find(labels);
    return { inc: () => series && (series.value = (series.value ?? 0) + 1) };
  }
}

/** A value that is set: a count, a size, a time. A series without a value is left out of the output. */
export class Gauge extends Metric {
  set(value: number | undefined, labels: Labels = {}): void {
    const series = this.find(labels);
    if (series) series.value = value;
  }
}

export interface MetricOptions {
  /** Every label combination the metric may take (none: a single series without labels). */
  readonly series?: readonly Labels[];
}

/** The cartesian product of label values: `combos({a: ["1", "2"]})` is `[{a: "1"}, {a: "2"}]`. */
export function combos(values: Readonly<Record<string, readonly string[]>>): Labels[] {
  return Object.entries(values).reduce<Labels[]>(
    (acc, [name, vals]) => acc.flatMap((labels) => vals.map((v) => ({ ...labels, [name]: v }))),
    [{}],
  );
}

/** Updates metrics right before they are rendered: reads of files, commands or the clock. */
export type Collector = () => Promise<void> | void;

export class Registry {
  private readonly metrics = new Map<string, Counter | Gauge>();
  private readonly collectors: Collector[] = [];

  constructor(private readonly warn: (message: string) => void = () => {}) {}

  counter(name: string, help: string, opts: MetricOptions = {}): Counter {
    if (!name.endsWith("_total")) throw new Error(`metrics: counter ${name} must end with _total`);
    return this.add(new Counter(name, help, "counter", opts.series ?? [], this.warn, 0));
  }

  gauge(name: string, help: string, opts: MetricOptions = {}): Gauge {
    if (name.endsWith("_total")) throw new Error(`metrics: gauge ${name} must not end with _total`);
    return this.add(new Gauge(name, help, "gauge", opts.series ?? [], this.warn, undefined));
  }

  /** Runs before every render; a collector that throws is reported and leaves its metrics as they were. */
  collect(collector: Collector): void {
    this.collectors.push(collector);
  }

  /** The metric of this name (tests). */
  metric(name: string): Counter | Gauge | undefined {
    return this.metrics.get(name);
  }

  /** Runs the collectors, then renders every metric in the text format, sorted by name. */
  async render(): Promise<string> {
    const results = await Promise.allSettled(this.collectors.map(async (c) => c()));
    for (const r of results) {
      if (r.status === "rejected") this.warn(`metrics: collector failed: ${(r.reason as Error).message}`);
    }
    return this.text();
  }

  /** The text format of the current values, without running the collectors. */
  text(): string {
    return [...this.metrics.keys()]
      .sort()
      .map((name) => this.metrics.get(name)!.render())
      .join("");
  }

  private add<M extends Counter | Gauge>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metrics: ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}
