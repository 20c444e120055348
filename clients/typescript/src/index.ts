// A thin typed layer over socket.io-client for Switchboard. The event maps, payload types and
// error codes come from ./generated/contract.ts, which the server generates from its own types
// (docs/contracts.md in the server's repository).

import { io } from "socket.io-client";
import type { ManagerOptions, Socket, SocketOptions } from "socket.io-client";

import type {
  Ack,
  ClientEvents,
  ClientToServerEvents,
  CustomBroadcastEvent,
  CustomBroadcastEventName,
  ErrorCode,
  ServerToClientEvents,
} from "./generated/contract.js";

export * from "./generated/contract.js";

/** socket.io-client's socket, typed with the server's event maps. */
export type SwitchboardSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type ClientEventName = keyof ClientEvents;
export type ServerEventName = keyof ServerToClientEvents;
/** The payload `event` takes. */
export type RequestOf<E extends ClientEventName> = ClientEvents[E]["request"];
/** What `event`'s ack carries on success. */
export type AckDataOf<E extends ClientEventName> = ClientEvents[E]["ack"];
/** The payload the server emits with `event`. */
export type PayloadOf<E extends ServerEventName> = Parameters<ServerToClientEvents[E]>[0];

/**
 * Why a request failed: one of the server's error codes, or, decided on this side, `TIMEOUT`
 * (no ack in time), `CLOSED` (the client was closed) or `INVALID_REQUEST` (refused by the
 * optional validator before sending).
 */
export type FailureCode = ErrorCode | "TIMEOUT" | "CLOSED" | "INVALID_REQUEST";

export class SwitchboardError extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    readonly event: string,
  ) {
    super(`${event}: ${code}: ${message}`);
    this.name = "SwitchboardError";
  }
}

/** Checks a payload before it is sent: an error message, or null when it is fine. */
export type RequestValidator = (event: ClientEventName, payload: unknown) => string | null;

export interface ConnectOptions {
  /** The server's base URL, e.g. `http://localhost:3000`. */
  url: string;
  /** A user's JWT, or a function asked for one before every (re)connection. */
  token?: string | (() => string | Promise<string>);
  /** A server-side API key, instead of a token. */
  apiKey?: string;
  /** How long `request` waits for an ack, in milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Optional runtime validation of requests (see `switchboard-client/validate`). */
  validate?: RequestValidator;
  /** Passed to socket.io-client as they are. */
  socket?: Partial<ManagerOptions & SocketOptions>;
}

type AnyEmitter = {
  timeout(ms: number): {
    emit(event: string, payload: unknown, cb: (err: Error | null, res: Ack<unknown>) => void): void;
  };
};

/**
 * A connection to Switchboard. Rooms belong to a connection, so what was joined with `keep`
 * is joined again after every reconnection; `request` waits for the connection while it is
 * down (socket.io-client buffers the emit) and rejects after `timeoutMs`.
 */
export class SwitchboardClient {
  readonly socket: SwitchboardSocket;
  private readonly timeoutMs: number;
  private readonly validate?: RequestValidator;
  private readonly kept = new Map<string, { event: ClientEventName; payload: unknown }>();
  private closed = false;

  constructor(options: ConnectOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.validate = options.validate;
    const { token, apiKey } = options;
    this.socket = io(options.url, {
      ...options.socket,
      // A function: socket.io-client asks again on every reconnection, so a refreshed token
      // is used after a drop.
      auth: (cb) => {
        if (apiKey !== undefined) {
          cb({ apiKey });
        } else if (typeof token === "function") {
          Promise.resolve(token()).then(
            (t) => cb({ token: t }),
            () => cb({}),
          );
        } else {
          cb({ token });
        }
      },
    });
    this.socket.io.on("reconnect", () => this.rejoin());
  }

  /** Emits `event` and resolves with its ack's data; rejects with a `SwitchboardError`. */
  request<E extends ClientEventName>(
    event: E,
    payload: RequestOf<E>,
    options?: { timeoutMs?: number },
  ): Promise<AckDataOf<E>> {
    if (this.closed) {
      return Promise.reject(new SwitchboardError("CLOSED", "the client is closed", event));
    }
    const invalid = this.validate?.(event, payload) ?? null;
    if (invalid !== null) {
      return Promise.reject(new SwitchboardError("INVALID_REQUEST", invalid, event));
    }
    const ms = options?.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      (this.socket as unknown as AnyEmitter).timeout(ms).emit(event, payload, (err, res) => {
        if (err) {
          reject(new SwitchboardError("TIMEOUT", `no ack within ${ms} ms`, event));
        } else if (res.ok) {
          resolve(res.data as AckDataOf<E>);
        } else {
          reject(new SwitchboardError(res.error.code, res.error.message, event));
        }
      });
    });
  }

  /**
   * Like `request`, and sent again after every reconnection (subscriptions and joins: a new
   * connection is in no room). `key` names it for `forget`; the default is the event and
   * payload.
   */
  keep<E extends ClientEventName>(
    event: E,
    payload: RequestOf<E>,
    key: string = `${event} ${JSON.stringify(payload)}`,
  ): Promise<AckDataOf<E>> {
    this.kept.set(key, { event, payload });
    return this.request(event, payload);
  }

  /** Stops re-sending a kept request (send its `unsubscribe:*` / `*:leave` yourself). */
  forget(key: string): void {
    this.kept.delete(key);
  }

  /** Listens to a server event; answers a function that stops listening. */
  on<E extends ServerEventName>(event: E, handler: ServerToClientEvents[E]): () => void {
    const s = this.socket as unknown as {
      on(e: string, h: (...a: unknown[]) => void): void;
      off(e: string, h: (...a: unknown[]) => void): void;
    };
    const h = handler as (...a: unknown[]) => void;
    s.on(event, h);
    return () => s.off(event, h);
  }

  /** Listens to `custom:<name>` from `custom:broadcast`. */
  onCustom(name: string, handler: (payload: CustomBroadcastEvent) => void): () => void {
    const event: CustomBroadcastEventName = `custom:${name}`;
    const h = handler as (...a: unknown[]) => void;
    const s = this.socket as unknown as {
      on(e: string, h: (...a: unknown[]) => void): void;
      off(e: string, h: (...a: unknown[]) => void): void;
    };
    s.on(event, h);
    return () => s.off(event, h);
  }

  close(): void {
    this.closed = true;
    this.kept.clear();
    this.socket.close();
  }

  private rejoin(): void {
    for (const { event, payload } of this.kept.values()) {
      // A failure is reported through the server's `error` event like any other.
      this.request(event, payload as never).catch(() => undefined);
    }
  }
}

/** Connects to Switchboard. */
export function connect(options: ConnectOptions): SwitchboardClient {
  return new SwitchboardClient(options);
}
