// One websocket per tab to /api/ws: authenticated by the access_token query parameter, reconnecting with backoff,
// re-subscribing what the pages still show. Pages use `live.subscribe(filter, listener)` (see useLive in hooks).

import {
  backoffDelay,
  type ClientMessage,
  type LiveFilter,
  type Listener,
  parseServerMessage,
  SubscriptionRegistry,
} from "./subscriptions";

export type ConnectionState = "connecting" | "open" | "closed";

interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export interface LiveSocketOptions {
  url: () => string | null;
  createSocket?: (url: string) => SocketLike;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** The server closed with 4401 (the token is not, or no longer, valid): the app checks its session. */
  onUnauthorized?: () => void;
}

/** The close code the server uses for a connect without a valid token (browsers cannot see an HTTP 401). */
export const CLOSE_UNAUTHORIZED = 4401;

const OPEN = 1;

export class LiveSocket {
  readonly registry = new SubscriptionRegistry();
  private socket: SocketLike | null = null;
  private attempt = 0;
  private timer: unknown = null;
  private stopped = true;
  private stateListeners = new Set<(state: ConnectionState) => void>();
  state: ConnectionState = "closed";

  constructor(private readonly options: LiveSocketOptions) {}

  /** Connects (again): after login, or when the first page subscribes. */
  start(): void {
    this.stopped = false;
    if (this.socket || this.timer !== null) return;
    this.connect();
  }

  /** Closes for good (logout); subscriptions stay registered for the next start. */
  stop(): void {
    this.stopped = true;
    this.clearRetry();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close();
    }
    this.setState("closed");
  }

  /** Restart with a fresh URL (a new token). */
  restart(): void {
    this.stop();
    this.attempt = 0;
    this.start();
  }

  subscribe(filter: LiveFilter, listener: Listener): () => void {
    const { unsubscribe, messages } = this.registry.subscribe(filter, listener);
    this.send(messages);
    if (this.stopped) this.start();
    return () => this.send(unsubscribe());
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  private send(messages: ClientMessage[]): void {
    if (!this.socket || this.socket.readyState !== OPEN) return; // sent on (re)connect instead
    for (const message of messages) this.socket.send(JSON.stringify(message));
  }

  private connect(): void {
    const url = this.options.url();
    if (!url) return;
    const create = this.options.createSocket ?? ((u: string) => new WebSocket(u) as unknown as SocketLike);
    let socket: SocketLike;
    try {
      socket = create(url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    this.setState("connecting");
    socket.onopen = () => {
      this.attempt = 0;
      this.setState("open");
      this.send(this.registry.resubscribeMessages());
    };
    socket.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      const parsed = parseServerMessage(ev.data);
      if (parsed) this.registry.dispatch(parsed.event, parsed.subscriptions);
    };
    socket.onerror = () => {
      // onclose follows and schedules the retry.
    };
    socket.onclose = (ev) => {
      if (this.socket === socket) this.socket = null;
      this.setState("closed");
      if (ev?.code === CLOSE_UNAUTHORIZED) this.options.onUnauthorized?.();
      if (!this.stopped) this.scheduleRetry();
    };
  }

  private scheduleRetry(): void {
    this.clearRetry();
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    const setTimer = this.options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.timer = setTimer(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private clearRetry(): void {
    if (this.timer !== null) (this.options.clearTimer ?? ((h) => clearTimeout(h as number)))(this.timer);
    this.timer = null;
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.stateListeners.forEach((listener) => listener(state));
  }
}
