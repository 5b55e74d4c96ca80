// Turns page sources into HTML: nunjucks fills the relay's values into Markdown and the layout (templates come
// from memory, never from disk), marked converts the Markdown. Raw HTML in the Markdown passes through.
import { Marked } from "marked";
import * as nunjucks from "nunjucks";
import { plural, words } from "./values";

class MemoryLoader implements nunjucks.ILoader {
  constructor(private readonly texts: ReadonlyMap<string, string>) {}

  getSource(name: string): nunjucks.LoaderSource {
    const src = this.texts.get(name);
    if (src === undefined) throw new Error(`${name}: no such file in the web page folder`);
    return { src, path: name, noCache: true };
  }
}

export interface Renderer {
  /** Renders the template `name` with `context` (values must already be escaped for where they go). */
  template(name: string, context: object): string;
  /** Renders the Markdown template `name` and converts the result to HTML. */
  markdown(name: string, context: object): string;
}

/** A renderer over the given text files (path -> content). */
export function createRenderer(texts: ReadonlyMap<string, string>): Renderer {
  const env = new nunjucks.Environment(new MemoryLoader(texts), {
    autoescape: false,
    throwOnUndefined: true,
    // Block tags on their own lines leave no blank or indented lines, which Markdown would read as code.
    trimBlocks: true,
    lstripBlocks: true,
  });
  env.addFilter("words", words);
  env.addFilter("plural", plural);
  const marked = new Marked({ gfm: true });

  const template = (name: string, context: object): string => {
    try {
      return env.render(name, context);
    } catch (e) {
      throw new Error(explain(name, texts.get(name) ?? "", (e as Error).message));
    }
  };
  return {
    template,
    markdown: (name, context) => marked.parse(template(name, context), { async: false }),
  };
}

/**
 * nunjucks reports an unknown value only as "attempted to output null or undefined value" at a line and
 * column; quote the expression found there so the operator sees which name is wrong.
 */
function explain(name: string, source: string, message: string): string {
  const where = /\[Line (\d+), Column (\d+)\]/.exec(message);
  const line = where ? source.split("\n")[Number(where[1]) - 1] : undefined;
  const expression = line?.slice(Number(where?.[2]) - 1).match(/^\{\{.*?\}\}/)?.[0];
  const detail = message.replace(/^\(.*?\)\s*(\[Line \d+, Column \d+\])?\s*/s, "").trim();
  const position = where ? ` line ${where[1]}` : "";
  if (expression && /undefined value/.test(detail))
    return `${name}${position}: ${expression} has no value; check the name`;
  return `${name}${position}: ${detail}`;
}
