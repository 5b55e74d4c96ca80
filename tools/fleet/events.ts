// One readable line per engine event worth showing (resource steps, diagnostics, policy, the summary), and the
// stacks' outputs as lines, with every secret masked: secret outputs print as [secret], and any known secret
// value (the stack's secret config, secret outputs) is replaced wherever it would appear in a line.
import type { EngineEvent, OutputValue, StepEventMetadata } from "@pulumi/pulumi/automation";
import { renderChanges, summariseChanges } from "./changes";

export const SECRET = "[secret]";

/** Secrets shorter than this are not searched for in text (they would mask ordinary words and numbers). */
export const MIN_MASKED_LENGTH = 8;
const MAX_LINE = 600;

/**
 * Replaces every occurrence of a secret value (and of each long enough line of a multi-line one, such as a PEM
 * key) with [secret].
 */
export function secretMasker(secrets: Iterable<unknown>): (text: string) => string {
  const needles = new Set<string>();
  for (const secret of secrets) {
    const text = typeof secret === "string" ? secret : secret === undefined ? "" : JSON.stringify(secret);
    for (const candidate of [text, text.trim(), ...text.split(/\r?\n/).map((l) => l.trim())])
      if (candidate.length >= MIN_MASKED_LENGTH) needles.add(candidate);
  }
  // Longest first, so a whole value is replaced before any of its lines.
  const sorted = [...needles].sort((a, b) => b.length - a.length);
  return (text) => sorted.reduce((t, needle) => t.split(needle).join(SECRET), text);
}

/** The resource's name: the last part of its URN. */
export function resourceName(urn: string): string {
  const i = urn.lastIndexOf("::");
  return i < 0 ? urn : urn.slice(i + 2);
}

const PAST: Record<string, string> = {
  create: "created",
  update: "updated",
  delete: "deleted",
  replace: "replaced",
  read: "read",
  "read-replacement": "read replacement",
  refresh: "refreshed",
  discard: "discarded",
  "discard-replaced": "discarded replaced",
  "remove-pending-replace": "removed pending replace",
  import: "imported",
  "import-replacement": "imported replacement",
};

/** Resources not worth a line: the stack itself and the providers. */
const hidden = (m: StepEventMetadata) =>
  m.type === "pulumi:pulumi:Stack" || m.type.startsWith("pulumi:providers:");

/** Removes the engine's colour directives and terminal escapes, and folds the text onto one line. */
export function oneLine(text: string, max = MAX_LINE): string {
  const plain = text
    .replace(/<\{%[^%]*%\}>/g, "")
    .replace(/\u001b\[[0-9;]*[A-Za-z]/g, "")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join(" | ");
  return plain.length <= max ? plain : `${plain.slice(0, max - 1)}…`;
}

/**
 * The line for one engine event, or undefined for an event not shown: unchanged resources, the prelude (the
 * whole config), debug diagnostics (the SDK's debug lines print secret values), the stack and provider
 * resources. In a preview (`planning`) each resource gets its planned step; in an up, a line when the step
 * starts and one when it is done. A replacement shows as one replace.
 */
export function eventLine(event: EngineEvent, mask: (text: string) => string = (t) => t): string | undefined {
  const line = rawLine(event);
  return line === undefined ? undefined : mask(line);
}

function rawLine(e: EngineEvent): string | undefined {
  if (e.resourcePreEvent) {
    const m = e.resourcePreEvent.metadata;
    const planning = !!e.resourcePreEvent.planning;
    if (m.op === "same" || hidden(m) || m.op === "delete-replaced") return undefined;
    // A replacement is three steps (create-replacement, replace, delete-replaced); it shows as one replace:
    // planned with the logical replace step, started and done with the creation of the new resource.
    if (m.op === "create-replacement" && planning) return undefined;
    if (m.op === "replace" && !planning) return undefined;
    const op = m.op === "create-replacement" ? "replace" : m.op;
    const keys = m.diffs && m.diffs.length > 0 ? `; changes ${m.diffs.join(", ")}` : "";
    return `${op} ${resourceName(m.urn)} (${planning ? "planned" : "started"}${keys})`;
  }
  if (e.resOutputsEvent) {
    const m = e.resOutputsEvent.metadata;
    // A preview announces each step in its pre event already.
    if (e.resOutputsEvent.planning || m.op === "same" || hidden(m)) return undefined;
    if (m.op === "create-replacement") return `replace ${resourceName(m.urn)} (replaced)`;
    if (m.op === "replace" || m.op === "delete-replaced") return undefined;
    return `${m.op} ${resourceName(m.urn)} (${PAST[m.op] ?? m.op})`;
  }
  if (e.resOpFailedEvent) {
    const m = e.resOpFailedEvent.metadata;
    return `${m.op === "create-replacement" ? "replace" : m.op} ${resourceName(m.urn)} (failed)`;
  }
  if (e.diagnosticEvent) {
    const d = e.diagnosticEvent;
    if (d.ephemeral || !["info", "info#err", "warning", "error"].includes(d.severity)) return undefined;
    const text = oneLine(d.message);
    if (text === "") return undefined;
    const severity = d.severity === "info#err" ? "info" : d.severity;
    const about = d.urn ? ` ${resourceName(d.urn)}` : "";
    return `${severity}${about}: ${text}`;
  }
  if (e.policyEvent) {
    const p = e.policyEvent;
    const about = p.resourceUrn ? ` ${resourceName(p.resourceUrn)}` : "";
    return `policy ${p.enforcementLevel} ${p.policyPackName}/${p.policyName}${about}: ${oneLine(p.message)}`;
  }
  if (e.stdoutEvent) {
    const text = oneLine(e.stdoutEvent.message);
    return text === "" ? undefined : text;
  }
  if (e.summaryEvent) {
    const s = e.summaryEvent;
    const counts = summariseChanges(s.resourceChanges);
    return `summary: ${renderChanges(counts)} (${counts.unchanged} unchanged) in ${s.durationSeconds} s`;
  }
  return undefined;
}

/** An output's value as the fleet shows it: secret ones are [secret], whatever they hold. */
export function shownOutput(output: OutputValue): unknown {
  return output.secret ? SECRET : output.value;
}

/** `name = value` on one line: a secret as [secret], a multi-line text as its first line and its line count. */
export function outputLine(
  name: string,
  output: OutputValue,
  mask: (text: string) => string = (t) => t,
): string {
  const value = shownOutput(output);
  let text: string;
  if (typeof value === "string") {
    const lines = value.trimEnd().split("\n");
    text = lines.length > 1 ? `${oneLine(lines[0], 120)} … (${lines.length} lines)` : oneLine(value, 200);
  } else {
    text = oneLine(JSON.stringify(value) ?? "undefined", 200);
  }
  return mask(`${name} = ${text}`);
}
