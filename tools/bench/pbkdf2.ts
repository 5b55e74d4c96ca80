// `npm run bench -- pbkdf2`: CPU per PBKDF2-HMAC-SHA1 hash at Dovecot's 5000 rounds, our WebAssembly lanes
// (daemons/doveauth/pbkdf2lanes.ts) next to node:crypto (OpenSSL) in the same process, rows in interleaved rounds.
// CPU is process.cpuUsage(), all threads, so the thread pool's work counts too. Also: the longest the event loop
// waits for its turn while the lanes run, which is what lookups of existing accounts wait at worst.
import { pbkdf2, pbkdf2Sync } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { Pbkdf2Lanes, SLICE_ITERATIONS } from "../../daemons/doveauth/pbkdf2lanes";
import { createSha1Lanes } from "../../daemons/doveauth/sha1wasm";
import { median, summary } from "./stats";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** Hashes per row and round. */
const HASHES = Number(process.env.BENCH_HASHES ?? 48);
const PASSWORD = "benchpassword1";
const SALT = "fKGxbNE/4Rk56YNB";
const ITERATIONS = 5000;

interface Row {
  name: string;
  /** Hashes computed at once. */
  atOnce: number;
  /** Computes `atOnce` hashes. */
  run(): Promise<unknown> | void;
  cpu: number[];
  wall: number[];
}

const openssl = (): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    pbkdf2(PASSWORD, SALT, ITERATIONS, 20, "sha1", (err, key) => (err ? reject(err) : resolve(key))),
  );

export async function run(): Promise<void> {
  const lanes = new Pbkdf2Lanes();
  const raw = createSha1Lanes();
  const derive = () => lanes.derive(PASSWORD, SALT, ITERATIONS);
  const rows: Row[] = [
    {
      name: "node:crypto pbkdf2Sync (OpenSSL)",
      atOnce: 1,
      run: () => pbkdf2Sync(PASSWORD, SALT, 5000, 20, "sha1"),
    },
    {
      name: "node:crypto pbkdf2, libuv thread pool",
      atOnce: 4,
      run: () => Promise.all([1, 2, 3, 4].map(openssl)),
    },
    { name: "WebAssembly lanes, alone (i32 code)", atOnce: 1, run: derive },
    { name: "WebAssembly lanes, batch of 2 (v128)", atOnce: 2, run: () => Promise.all([derive(), derive()]) },
    {
      name: "WebAssembly lanes, batch of 4 (v128)",
      atOnce: 4,
      run: () => Promise.all([1, 2, 3, 4].map(derive)),
    },
    ...[50, 100, 500].map((slice) => {
      const other = new Pbkdf2Lanes(slice);
      return {
        name: `WebAssembly lanes, 16 queued, slices of ${slice}`,
        atOnce: 16,
        run: () => Promise.all(Array.from({ length: 16 }, () => other.derive(PASSWORD, SALT, ITERATIONS))),
      };
    }),
    {
      name: `WebAssembly lanes, 16 queued, slices of ${SLICE_ITERATIONS}`,
      atOnce: 16,
      run: () => Promise.all(Array.from({ length: 16 }, derive)),
    },
    { name: "bare loop: iterate1(5000)", atOnce: 1, run: () => raw.iterate1(ITERATIONS) },
    { name: "bare loop: iterate4(5000), one lane used", atOnce: 1, run: () => raw.iterate4(ITERATIONS) },
    { name: "bare loop: iterate4(5000), four lanes used", atOnce: 4, run: () => raw.iterate4(ITERATIONS) },
  ].map((r) => ({ ...r, cpu: [], wall: [] }));

  const measure = async (row: Row, hashes: number) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let done = 0; done < hashes; done += row.atOnce) await row.run();
    const cpu = process.cpuUsage(cpu0);
    return { cpu: (cpu.user + cpu.system) / 1000 / hashes, wall: (performance.now() - t0) / hashes };
  };
  // Warm-up: V8 first runs WebAssembly in its baseline compiler and moves hot functions to the optimizing one.
  for (const row of rows) await measure(row, HASHES);
  for (let round = 0; round < ROUNDS; round++)
    for (const row of rows) {
      const m = await measure(row, HASHES);
      row.cpu.push(m.cpu);
      row.wall.push(m.wall);
    }
  const stalls: number[] = [];
  for (let round = 0; round < ROUNDS; round++)
    stalls.push(await longestTurn(() => Promise.all(Array.from({ length: 16 }, derive))));

  const base = median(rows[0].cpu);
  console.log(
    `machine: ${cpus().length} cores, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(
        " ",
      )} (other work included); Node ${process.versions.node}; PBKDF2-HMAC-SHA1, ${ITERATIONS} rounds, ` +
      `20-byte key; ${HASHES} hashes per row and round, ${ROUNDS} interleaved rounds; median (lowest–highest).\n`,
  );
  console.log("| hashing | at once | CPU ms per hash | ÷ pbkdf2Sync CPU | wall ms per hash |");
  console.log("|---|---:|---:|---:|---:|");
  for (const row of rows)
    console.log(
      `| ${row.name} | ${row.atOnce} | ${summary(row.cpu, 3)} | ${(median(row.cpu) / base).toFixed(2)} | ${summary(row.wall, 3)} |`,
    );
  console.log(
    `\nLongest wait of a setImmediate callback while the lanes hash 16 passwords (slices of ${SLICE_ITERATIONS} ` +
      `iterations): ${summary(stalls, 3)} ms.`,
  );
}

/** The longest gap between turns of a setImmediate loop running beside `work`, in ms. */
async function longestTurn(work: () => Promise<unknown>): Promise<number> {
  let stop = false;
  let longest = 0;
  let last = performance.now();
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (!stop) setImmediate(tick);
  };
  setImmediate(tick);
  await work();
  stop = true;
  return longest;
}
