// Live updates: the notifications WebSocket (API.md, Notification) with the access token in the
// URL (a browser cannot set headers on a WebSocket). It reconnects with back-off, renews the
// token when the server closes with 4401, and after every (re)connect catches up on what it missed
// with GET /notifications?after=<last id>, so nothing is lost and nothing is shown twice.
import { session } from "../shared/session";

export interface Notification {
  id: number;
  event_id: string;
  order_id: string;
  order_number: string;
  kind: "order_created" | "status_changed" | "order_cancelled" | string;
  status?: string;
  title: string;
  message: string;
  url: string;
  created_at: string;
}

export type LiveState =
  | { kind: "connecting" }
  | { kind: "connected" }
  | { kind: "offline"; retryInS: number }
  | { kind: "stopped" };

// The shared CloseCodes (actors/common/contracts.py).
const UNAUTHORIZED = 4401;
const FORBIDDEN = 4403;
const MAX_DELAY_S = 30;

export class LiveFeed {
  private socket: WebSocket | null = null;
  private lastId: number | null = null;
  private seen = new Set<number>();
  private attempt = 0;
  private timer: number | undefined;
  private running = false;
  /** Everything up to this id was there before the panel opened: not new. */
  private floor = 0;

  constructor(
    private readonly onNotification: (notification: Notification) => void,
    private readonly onState: (state: LiveState) => void,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    void this.connect();
  }

  stop(): void {
    this.running = false;
    window.clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "signed out");
    this.lastId = null;
    this.floor = 0;
    this.seen.clear();
    this.onState({ kind: "stopped" });
  }

  private async connect(): Promise<void> {
    if (!this.running) return;
    this.onState({ kind: "connecting" });
    let token: string | null;
    try {
      token = await session.token();
      // The newest id so far: only what comes after it counts as new.
      if (token && this.lastId === null) {
        const page = await session.request<{ items: Notification[] }>("/notifications", { query: { limit: 1 } });
        this.lastId = page.items.at(-1)?.id ?? 0;
        this.floor = this.lastId;
      }
    } catch {
      this.retryLater();
      return;
    }
    if (!token || !this.running) return; // signed out meanwhile
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const after = this.lastId ?? 0;
    const socket = new WebSocket(`${scheme}//${location.host}/notifications/ws?token=${encodeURIComponent(token)}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.onState({ kind: "connected" });
      void this.catchUp(after);
    });
    socket.addEventListener("message", (event) => {
      let message: unknown;
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (isNotification(message)) this.deliver(message);
    });
    socket.addEventListener("close", (event) => void this.closed(socket, event.code));
  }

  private async closed(socket: WebSocket, code: number): Promise<void> {
    if (this.socket !== socket || !this.running) return; // replaced or stopped on purpose
    this.socket = null;
    if (code === FORBIDDEN) {
      this.stop();
      return;
    }
    if (code === UNAUTHORIZED) {
      // The token expired or the session ended: renew it; a session that is gone stops the feed.
      try {
        if (!(await session.refresh())) {
          this.stop();
          return;
        }
      } catch {
        // the auth service is away: retry with back-off
      }
    }
    this.retryLater();
  }

  private retryLater(): void {
    if (!this.running) return;
    const base = Math.min(MAX_DELAY_S, 2 ** this.attempt);
    this.attempt += 1;
    const delayS = Math.max(1, Math.round(base * (0.75 + Math.random() * 0.5)));
    this.onState({ kind: "offline", retryInS: delayS });
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.connect(), delayS * 1000);
  }

  private async catchUp(after: number): Promise<void> {
    try {
      const page = await session.request<{ items: Notification[] }>("/notifications", {
        query: { after, limit: 500 },
      });
      page.items.forEach((notification) => this.deliver(notification));
    } catch {
      // The pushed ones still come; the next reconnect catches up again.
    }
  }

  private deliver(notification: Notification): void {
    if (notification.id <= this.floor || this.seen.has(notification.id)) return;
    this.seen.add(notification.id);
    this.lastId = Math.max(this.lastId ?? 0, notification.id);
    this.onNotification(notification);
  }
}

function isNotification(message: unknown): message is Notification {
  return typeof message === "object" && message !== null && typeof (message as Notification).id === "number" && "order_id" in message;
}
