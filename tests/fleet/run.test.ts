// The reason of a failed stack on one line, picked from the Automation API's error (the CLI's whole output).
import { describe, expect, it } from "vitest";
import { errorLine } from "../../tools/fleet/run";

/** What CommandResult.toString() makes of a failed `pulumi up`. */
const commandError = (stdout: string, stderr: string) =>
  new Error(`code: 255\n stdout: ${stdout}\n stderr: ${stderr}\n err?: \n`);

describe("errorLine", () => {
  it("takes the telling error line rather than 'update failed'", () => {
    const e = commandError(
      [
        "Updating (relay-a):",
        "  command:remote:Command relay-host-read-addresses creating (0s) error: after 30 failed attempts:",
        "Diagnostics:",
        "  command:remote:Command (relay-host-read-addresses):",
        "    error: after 30 failed attempts: dial tcp 127.0.0.1:22: connect: connection refused",
        "Resources:",
      ].join("\n"),
      "error: update failed\n",
    );
    expect(errorLine(e)).toBe("after 30 failed attempts: dial tcp 127.0.0.1:22: connect: connection refused");
  });

  it("falls back to 'update failed', then to the message's last line", () => {
    expect(errorLine(commandError("Updating (relay-a):", "error: update failed\n"))).toBe("update failed");
    expect(errorLine(new Error("spawn pulumi ENOENT"))).toBe("spawn pulumi ENOENT");
    expect(errorLine("plain text")).toBe("plain text");
  });

  it("names a missing stack as the CLI does", () => {
    expect(errorLine(commandError("", "error: no stack named 'nope' found\n"))).toBe(
      "no stack named 'nope' found",
    );
  });
});
