// What a dict daemon must answer to a whole input, read with the server's framing rules (daemons/dictproxy/
// server.ts): requests are LF-terminated lines (a CR before the LF is dropped, a last line without LF counts
// when the client half-closes), an empty line ends the session and nothing after it is answered, and every L, I
// and C gets exactly one answer, in order: an O/N/F line, or for a well-formed I its rows and an empty line.
// A line longer than MAX_LINE_BYTES may make the daemon drop the connection; then a prefix is enough.
import { parseRequest } from "../../daemons/dictproxy/protocol";
import { MAX_LINE_BYTES } from "./dict-inputs";

type Answer = "line" | "iteration";

export interface ExpectedAnswers {
  answers: Answer[];
  /** The input holds a line over the limit: the daemon may close early, after any prefix of the answers. */
  mayStopEarly: boolean;
}

/** The request lines of `input` as the server cuts them: bytes up to each LF, and a last one without LF. */
function requestLines(input: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = input.indexOf(0x0a); nl !== -1; nl = input.indexOf(0x0a, start)) {
    lines.push(input.subarray(start, nl));
    start = nl + 1;
  }
  if (start < input.length) lines.push(input.subarray(start));
  return lines;
}

export function expectedAnswers(input: Buffer): ExpectedAnswers {
  const lines = requestLines(input);
  const mayStopEarly = lines.some((l) => l.length > MAX_LINE_BYTES);
  const answers: Answer[] = [];
  for (const bytes of lines) {
    const cr = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d;
    const line = bytes.toString("utf8", 0, cr ? bytes.length - 1 : bytes.length);
    if (line === "") break;
    const command = line[0];
    if (command === "L" || command === "C") answers.push("line");
    if (command === "I") answers.push(wellFormed(line) ? "iteration" : "line");
  }
  return { answers, mayStopEarly };
}

function wellFormed(line: string): boolean {
  try {
    parseRequest(line);
    return true;
  } catch {
    return false;
  }
}

const ANSWER_LINE = /^(O[^\t\r\0]*|N|F)$/;
const ROW_LINE = /^O[^\t\r\0]*\t[^\t\r\0]*$/;

/** Why `output` is not the answer to the input, or undefined when it is. */
export function answerProblem(output: string, expected: ExpectedAnswers, cut: boolean): string | undefined {
  const early = expected.mayStopEarly || cut;
  const lines = output.split("\n");
  if (lines.pop() !== "" && !early) return `output ends inside a line: ${JSON.stringify(output.slice(-80))}`;
  let i = 0;
  for (const [n, kind] of expected.answers.entries()) {
    if (i >= lines.length) return early ? undefined : `${n} answers for ${expected.answers.length} requests`;
    if (kind === "line" || lines[i] === "F") {
      if (!ANSWER_LINE.test(lines[i]))
        return `answer ${n + 1}: ${JSON.stringify(lines[i].slice(0, 80))} is no O/N/F line`;
      i++;
      continue;
    }
    while (i < lines.length && lines[i] !== "") {
      if (!ROW_LINE.test(lines[i]))
        return `iteration ${n + 1}: ${JSON.stringify(lines[i].slice(0, 80))} is no row`;
      i++;
    }
    if (i >= lines.length) return early ? undefined : `iteration ${n + 1} has no end line`;
    i++;
  }
  if (i < lines.length)
    return `${lines.length - i} answer line(s) more than the ${expected.answers.length} requests due one: ${JSON.stringify(lines.slice(i, i + 3))}`;
  return undefined;
}
