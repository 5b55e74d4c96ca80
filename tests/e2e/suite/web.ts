// Port 443 and the web answers: nginx routes TLS by ALPN to IMAP, SMTP or the website; autoconfig, the MTA-STS
// policy and the www redirect answer as clients and other relays expect (docs/relay.md, 'What a client expects').
import { alpnSocket, https, newCredentials, readUntil } from "./clients";
import type { E2eTest } from "./types";

const WEB = ["service:nginx.service"];
const MTA_STS_MAX_AGE = 2419200;

export const web: E2eTest[] = [
  {
    name: "port 443 with ALPN imap reaches Dovecot and a login works through it",
    needs: [...WEB, "service:dovecot.service"],
    async run(ctx) {
      const account = newCredentials(ctx);
      const socket = await alpnSocket(ctx, "imap");
      try {
        const greeting = await readUntil(socket, (t) => t.includes("\r\n"));
        if (!greeting.startsWith("* OK")) throw new Error(`greeting: ${JSON.stringify(greeting)}`);
        socket.write(`a1 LOGIN ${account.addr} ${account.password}\r\n`);
        const reply = await readUntil(socket, (t) => /^a1 /m.test(t));
        if (!/^a1 OK/m.test(reply)) throw new Error(`LOGIN through 443: ${JSON.stringify(reply)}`);
      } finally {
        socket.destroy();
      }
      // nginx passes the client's address in a PROXY header, so Dovecot (and doveauth's per-client limit on first
      // logins) sees the test client, not the multiplexer's 127.0.0.1.
      // Dovecot 2.3 logs "Login: user=<...>", 2.4 "Logged in: user=<...>".
      const login = await ctx.ssh.out(
        `journalctl --no-pager -o cat -u dovecot | grep -E '(Login|Logged in): user=<${account.addr}>' || true`,
      );
      const rip = /rip=([0-9a-f.:]+)/.exec(login)?.[1];
      if (!rip || rip === "127.0.0.1")
        throw new Error(
          `Dovecot logged the login through 443 from ${rip ?? "nowhere"}: ${JSON.stringify(login)}`,
        );
    },
  },
  {
    name: "port 443 with ALPN smtp reaches Postfix",
    needs: [...WEB, "service:postfix.service"],
    async run(ctx) {
      const socket = await alpnSocket(ctx, "smtp");
      try {
        const greeting = await readUntil(socket, (t) => t.includes("\r\n"));
        if (!greeting.startsWith("220 ")) throw new Error(`greeting: ${JSON.stringify(greeting)}`);
        // Postfix reads the client's address from nginx's PROXY header (see the imap test above).
        const connect = await ctx.ssh.out(
          "journalctl --no-pager -o cat -t postfix/smtps-443/smtpd | grep -F 'connect from' | tail -n 1 || true",
        );
        if (!/connect from \S*\[(?!127\.0\.0\.1\])[0-9a-f.:]+\]/.test(connect))
          throw new Error(`Postfix logged the connection through 443 as ${JSON.stringify(connect)}`);
        socket.write("EHLO client.example\r\n");
        const reply = await readUntil(socket, (t) => /^250 /m.test(t));
        if (!/^250-AUTH /m.test(reply) && !/^250[- ]AUTH /m.test(reply))
          throw new Error(`EHLO through 443 offers no AUTH: ${JSON.stringify(reply)}`);
      } finally {
        socket.destroy();
      }
    },
  },
  {
    name: "port 443 with another or no ALPN gets the website",
    needs: WEB,
    async run(ctx) {
      for (const alpn of [undefined, ["http/1.1"]]) {
        const reply = await https(ctx, "GET", "/", alpn ? { alpn } : {});
        if (reply.status !== 200 || !/<html/i.test(reply.body)) {
          throw new Error(`GET / with ALPN ${alpn?.join(",") ?? "none"}: status ${reply.status}`);
        }
      }
    },
  },
  {
    name: "GET /new redirects to the dcaccount: link, keeping the query",
    needs: WEB,
    async run(ctx) {
      const reply = await https(ctx, "GET", "/new?x=1");
      const want = `dcaccount:https://${ctx.domain}/new?x=1`;
      if (reply.status !== 301 || reply.headers.location !== want) {
        throw new Error(
          `GET /new?x=1: ${reply.status} to ${String(reply.headers.location)}, want 301 to ${want}`,
        );
      }
    },
  },
  {
    name: "autoconfig lists IMAP 993/143/443 and SMTP 465/587/443 for the relay",
    needs: WEB,
    async run(ctx) {
      const reply = await https(ctx, "GET", "/.well-known/autoconfig/mail/config-v1.1.xml");
      if (reply.status !== 200) throw new Error(`autoconfig: status ${reply.status}`);
      const servers = [
        ...reply.body.matchAll(/<(incoming|outgoing)Server type="(\w+)">([\s\S]*?)<\/\1Server>/g),
      ].map(([, , type, inner]) => {
        const field = (name: string) => inner.match(new RegExp(`<${name}>([^<]*)</${name}>`))?.[1];
        return `${type} ${field("hostname")} ${field("port")} ${field("socketType")}`;
      });
      const want = [
        `imap ${ctx.domain} 993 SSL`,
        `imap ${ctx.domain} 143 STARTTLS`,
        `imap ${ctx.domain} 443 SSL`,
        `smtp ${ctx.domain} 465 SSL`,
        `smtp ${ctx.domain} 587 STARTTLS`,
        `smtp ${ctx.domain} 443 SSL`,
      ];
      const missing = want.filter((w) => !servers.includes(w));
      if (missing.length > 0)
        throw new Error(`autoconfig lacks ${missing.join("; ")}; has ${servers.join("; ")}`);
      if (!reply.body.includes("%EMAILADDRESS%"))
        throw new Error("autoconfig has no %EMAILADDRESS% username");
    },
  },
  {
    name: "the MTA-STS policy enforces the relay as the only MX",
    needs: WEB,
    async run(ctx) {
      const reply = await https(ctx, "GET", "/.well-known/mta-sts.txt", { host: `mta-sts.${ctx.domain}` });
      const want = `version: STSv1\nmode: enforce\nmx: ${ctx.domain}\nmax_age: ${MTA_STS_MAX_AGE}`;
      if (reply.status !== 200 || reply.body.replace(/\r\n/g, "\n").trim() !== want) {
        throw new Error(`mta-sts.txt: status ${reply.status}, body ${JSON.stringify(reply.body)}`);
      }
    },
  },
  {
    name: "www redirects to the relay's domain with the path kept",
    needs: WEB,
    async run(ctx) {
      const reply = await https(ctx, "GET", "/some/path", { host: `www.${ctx.domain}` });
      const want = `https://${ctx.domain}/some/path`;
      if (reply.status !== 301 || reply.headers.location !== want) {
        throw new Error(
          `https://www.${ctx.domain}/some/path: ${reply.status} to ${String(reply.headers.location)}`,
        );
      }
    },
  },
  {
    name: "GET /generate_204 answers 204 from the relay's own iroh-relay",
    needs: [...WEB, "service:iroh-relay.service"],
    async run(ctx) {
      if (ctx.irohReal === false)
        throw new Error(
          "the server runs the testbed's iroh-relay stand-in; build the real one with tools/iroh/build.sh",
        );
      const reply = await https(ctx, "GET", "/generate_204");
      if (reply.status !== 204)
        throw new Error(`GET /generate_204: status ${reply.status}: ${reply.body.slice(0, 200)}`);
    },
  },
];
