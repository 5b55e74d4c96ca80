// Option builders for the relay's options table (options.ts). Each builder knows its value type, how to parse
// the raw value from a stack config or a chatmail.ini, and how to check it. Parsing is strict: a bad value
// throws a ConfigError that names the option, quotes the value and says what is allowed.

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Where the value comes from decides how a string is read: YAML gives JSON for lists, chatmail.ini spaces. */
export type RawValue = string | number | boolean | string[] | undefined;

export interface Option<T> {
  /** Pulumi config schema type (Pulumi.yaml `config:` block). */
  readonly schemaType: "string" | "integer" | "boolean" | "array";
  /** One sentence for Pulumi.yaml and the README: what it changes and where it lands. */
  readonly description: string;
  /** The default the program applies; `undefined` means the option is required or has no value by default. */
  readonly default: T | undefined;
  /** Whether a stack must set it: only these are left without a default in Pulumi.yaml, where the CLI then
   * refuses a stack that lacks them. Every other option may be left out. */
  readonly required: boolean;
  /** Whether the value must be kept as a Pulumi secret. */
  readonly secret: boolean;
  /** Whether the option only matters to the Pulumi program (never on the server). */
  readonly deployOnly: boolean;
  /** Whether the daemons read it: only these go into the server's chatmail.ini, so that changing any other
   * option does not restart the daemons. */
  readonly daemons: boolean;
  /** Turns a raw value into a checked value; `name` is used in error messages. */
  parse(raw: Exclude<RawValue, undefined>, name: string): T;
}

interface Common {
  description: string;
  required?: boolean;
  secret?: boolean;
  deployOnly?: boolean;
  daemons?: boolean;
}

/** A value as an error message quotes it: JSON-escaped (a line break shows as \n), long ones shortened. */
const SHOWN_LENGTH = 60;
export function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > SHOWN_LENGTH
    ? `${text.slice(0, SHOWN_LENGTH)}..." (${String(v).length} characters)`
    : text;
}

/** Characters no option may hold unless it says so: C0 and C1 controls, DEL and the Unicode line separators. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const CONTROL_EXCEPT_LINE_BREAK = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/;
/** Longest value of any text option unless it says otherwise; enough for a URL or a postal address. */
const MAX_LENGTH = 1000;

/**
 * The check every text value passes before its own: printable text of bounded length. Values land in config
 * files, unit files and web pages, where a line break would start a new directive.
 */
function printable(value: string, rules: { multiline?: boolean; maxLength?: number }): string | undefined {
  const maxLength = rules.maxLength ?? MAX_LENGTH;
  if (value.length > maxLength) return `is too long; use at most ${maxLength} characters`;
  if ((rules.multiline ? CONTROL_EXCEPT_LINE_BREAK : CONTROL).test(value)) {
    return rules.multiline
      ? "contains a control character; use printable text (line breaks are allowed)"
      : "contains a control character or line break; use one line of printable text";
  }
  return undefined;
}

function make<T>(
  schemaType: Option<T>["schemaType"],
  c: Common,
  def: T | undefined,
  parse: Option<T>["parse"],
) {
  return {
    schemaType,
    description: c.description,
    default: def,
    required: c.required ?? false,
    secret: c.secret ?? false,
    deployOnly: c.deployOnly ?? false,
    daemons: c.daemons ?? false,
    parse,
  } satisfies Option<T>;
}

/** The largest whole number a JavaScript number holds exactly; larger ones would be rounded silently. */
const LARGEST_WHOLE = Number.MAX_SAFE_INTEGER;

export function integer(c: Common & { default?: number; min: number; max?: number }): Option<number> {
  const max = Math.min(c.max ?? LARGEST_WHOLE, LARGEST_WHOLE);
  return make("integer", c, c.default, (raw, name) => {
    // A YAML number arrives as a JS number (1e+23 for a long one), a chatmail.ini value as text; both are read
    // from their decimal text, and anything that is not an exact whole number in range is refused.
    const text = String(raw).trim();
    const n = /^-?\d{1,16}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < c.min || n > max) {
      throw new ConfigError(
        `${name}: ${shown(raw)} is not allowed; use a whole number from ${c.min} to ${max}`,
      );
    }
    return n;
  });
}

export function decimal(c: Common & { default: number; min: number }): Option<number> {
  return make("string", c, c.default, (raw, name) => {
    const text = String(raw).trim();
    if (!/^\d{1,9}(\.\d{1,9})?$/.test(text) || Number(text) < c.min) {
      throw new ConfigError(`${name}: ${shown(raw)} is not allowed; use a number of at least ${c.min}`);
    }
    return Number(text);
  });
}

export function boolean(c: Common & { default: boolean }): Option<boolean> {
  return make("boolean", c, c.default, (raw, name) => {
    if (typeof raw === "boolean") return raw;
    const text = String(raw).trim().toLowerCase();
    if (text === "true") return true;
    if (text === "false") return false;
    throw new ConfigError(`${name}: ${shown(raw)} is not allowed; use true or false`);
  });
}

export function string(
  c: Common & {
    default?: string;
    check?: (v: string) => string | undefined;
    /** Line breaks are allowed (a postal address, a PEM bundle, a private key); other controls never are. */
    multiline?: boolean;
    maxLength?: number;
  },
): Option<string> {
  return make("string", c, c.default, (raw, name) => {
    if (Array.isArray(raw)) throw new ConfigError(`${name}: expected text, got a list`);
    // Windows line ends (a value pasted from an editor) are read as plain line breaks.
    const value = String(raw).replace(/\r\n/g, "\n").trim();
    const problem = printable(value, c) ?? c.check?.(value);
    // A secret (an SSH private key) is never echoed back in an error message.
    if (problem) throw new ConfigError(`${name}: ${c.secret ? "the value" : shown(value)} ${problem}`);
    return value;
  });
}

export function choice<T extends string>(c: Common & { default?: T; values: readonly T[] }): Option<T> {
  return make("string", c, c.default, (raw, name) => {
    const value = String(raw).trim();
    if (!(c.values as readonly string[]).includes(value)) {
      throw new ConfigError(`${name}: ${shown(value)} is not allowed; use one of ${c.values.join(", ")}`);
    }
    return value as T;
  });
}

/**
 * A list of words. Stack config gives a YAML list (a JSON string under the SDK); chatmail.ini gives words
 * separated by whitespace, as cmdeploy reads them.
 */
export function list(
  c: Common & {
    default: string[];
    item: (v: string) => string | undefined;
    normalise?: (v: string) => string;
  },
): Option<string[]> {
  return make("array", c, c.default, (raw, name) => {
    let items: unknown[];
    if (Array.isArray(raw)) items = raw;
    else {
      const text = String(raw).trim();
      if (text.startsWith("[")) {
        try {
          items = JSON.parse(text);
        } catch {
          throw new ConfigError(`${name}: ${shown(text)} is not a valid list`);
        }
        if (!Array.isArray(items)) throw new ConfigError(`${name}: expected a list`);
      } else items = text === "" ? [] : text.split(/\s+/);
    }
    return items.map((item, i) => {
      if (typeof item !== "string") throw new ConfigError(`${name}[${i}]: ${shown(item)} is not text`);
      const value = c.normalise ? c.normalise(item) : item;
      const problem = printable(value, {}) ?? c.item(value);
      // A secret item (an invite token) is never echoed back in an error message.
      if (problem) throw new ConfigError(`${name}[${i}]: ${c.secret ? "the value" : shown(item)} ${problem}`);
      return value;
    });
  });
}
