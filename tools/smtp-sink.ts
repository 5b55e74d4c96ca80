// An SMTP server that accepts every message and keeps nothing: the next hop behind filtermail in the filtermail
// and memory benchmarks, run as a process of its own so that it does not share a core with the load generator.
// Forked by tools/bench/filtermail.ts (startSink); reports its port to the parent over IPC.
import { reply } from "../daemons/smtp/reply";
import { startSmtpServer } from "../daemons/smtp/server";

const QUEUED = reply(250, "2.0.0 Ok: queued");

startSmtpServer(
  {
    host: "127.0.0.1",
    port: 0,
    name: "sink",
    maxMessageBytes: 64 << 20,
    deadlineMs: 60_000,
    maxConnections: 100_000,
    log: () => undefined,
  },
  { onMailFrom: () => undefined, onData: async () => QUEUED },
).then((server) => process.send?.({ port: server.port }));
