// The shape every long-running daemon module returns from its start function, so that daemons/main.ts can run
// several of them in one Node process and stop them all cleanly on SIGTERM.
export interface Service {
  /** Stops accepting work, lets in-flight work finish, releases sockets. */
  close(): Promise<void>;
}
