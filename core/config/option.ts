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

const quote = (v: unknown) => JSON.stringify(v);

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

export function integer(c: Common & { default?: number; min: number; max?: number }): Option<number> {
  return make("integer", c, c.default, (raw, name) => {
    const text = String(raw).trim();
    if (!/^-?\d+$/.test(text)) throw new ConfigError(`${name}: ${quote(raw)} is not a whole number`);
    const n = Number(text);
    if (n < c.min || (c.max !== undefined && n > c.max)) {
      const range = c.max === undefined ? `at least ${c.min}` : `from ${c.min} to ${c.max}`;
      throw new ConfigError(`${name}: ${n} is out of range; use a whole number ${range}`);
    }
    return n;
  });
}

export function decimal(c: Common & { default: number; min: number }): Option<number> {
  return make("string", c, c.default, (raw, name) => {
    const text = String(raw).trim();
    if (!/^\d+(\.\d+)?$/.test(text) || Number(text) < c.min) {
      throw new ConfigError(`${name}: ${quote(raw)} is not allowed; use a number of at least ${c.min}`);
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
    throw new ConfigError(`${name}: ${quote(raw)} is not allowed; use true or false`);
  });
}

export function string(
  c: Common & { default?: string; check?: (v: string) => string | undefined },
): Option<string> {
  return make("string", c, c.default, (raw, name) => {
    if (Array.isArray(raw)) throw new ConfigError(`${name}: expected text, got a list`);
    const value = String(raw).trim();
    const problem = c.check?.(value);
    if (problem) throw new ConfigError(`${name}: ${quote(value)} ${problem}`);
    return value;
  });
}

export function choice<T extends string>(c: Common & { default?: T; values: readonly T[] }): Option<T> {
  return make("string", c, c.default, (raw, name) => {
    const value = String(raw).trim();
    if (!(c.values as readonly string[]).includes(value)) {
      throw new ConfigError(`${name}: ${quote(value)} is not allowed; use one of ${c.values.join(", ")}`);
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
          throw new ConfigError(`${name}: ${quote(text)} is not a valid list`);
        }
        if (!Array.isArray(items)) throw new ConfigError(`${name}: expected a list`);
      } else items = text === "" ? [] : text.split(/\s+/);
    }
    return items.map((item, i) => {
      if (typeof item !== "string") throw new ConfigError(`${name}[${i}]: ${quote(item)} is not text`);
      const value = c.normalise ? c.normalise(item) : item;
      const problem = c.item(value);
      // A secret item (an invite token) is never echoed back in an error message.
      if (problem) throw new ConfigError(`${name}[${i}]: ${c.secret ? "the value" : quote(item)} ${problem}`);
      return value;
    });
  });
}
