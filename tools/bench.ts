// `npm run bench -- <name>`: runs tools/bench/<name>.ts, which prints a Markdown table of measured figures.
import { readdirSync } from "node:fs";
import { join } from "node:path";

async function main(): Promise<void> {
  const available = readdirSync(join(__dirname, "bench"))
    .filter((f) => f.endsWith(".ts"))
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
