// `npm run bench -- <name>`: runs tools/bench/<name>.ts, which prints a Markdown table of measured figures.
// A bench is a file there that exports run(); the others are the benches' shared parts (docs/benchmarks.md).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

async function main(): Promise<void> {
  const dir = join(__dirname, "bench");
  const available = readdirSync(dir)
    .filter(
      (f) => f.endsWith(".ts") && /^export async function run\(/m.test(readFileSync(join(dir, f), "utf8")),
    )
    .map((f) => f.slice(0, -3))
    .sort();
  const names = process.argv.slice(2);
  if (names.length === 0 || names.some((n) => !available.includes(n))) {
    console.error(`usage: npm run bench -- <name>...\navailable benchmarks: ${available.join(", ")}`);
    process.exit(2);
  }
  for (const name of names) {
    const bench = await import(join(__dirname, "bench", `${name}.ts`));
    await bench.run();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
