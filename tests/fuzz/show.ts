// Counterexamples in a form a person can read in a CI log: bytes as a JSON string (latin1, so every byte shows),
// long runs of one byte folded to "<'a' x 65537>", the whole cut at a few thousand characters.
const MAX_SHOWN_CHARS = 3000;
const FOLD_RUNS_FROM = 16;

export function showBytes(data: Buffer): string {
  const text = data.toString("latin1");
  let out = "";
  for (let i = 0; i < text.length;) {
    let j = i;
    while (j < text.length && text[j] === text[i]) j++;
    out +=
      j - i >= FOLD_RUNS_FROM
        ? `<${JSON.stringify(text[i])} x ${j - i}>`
        : JSON.stringify(text.slice(i, j)).slice(1, -1);
    i = j;
  }
  const shown = out.length > MAX_SHOWN_CHARS ? `${out.slice(0, MAX_SHOWN_CHARS)}... (cut)` : out;
  return `${data.length} bytes: "${shown}"`;
}

/** An input record with its Buffer fields shown by showBytes and the rest as JSON. */
export function showInput(input: object): string {
  return Object.entries(input)
    .map(([key, value]) => `  ${key}: ${Buffer.isBuffer(value) ? showBytes(value) : JSON.stringify(value)}`)
    .join("\n");
}
