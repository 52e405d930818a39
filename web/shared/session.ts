// The browser session (/auth/session): the access token lives only in this module's memory, the
// refresh token only in an HttpOnly cookie the page never sees. A reload restores the session
// with POST /auth/session/refresh; a 401 on an API call refreshes once and tries again.
import { ApiError, request, send, type ApiResponse, type RequestOptions } from "./api";

export type Credentials = { email: string; password: string } | { order_number: string; email: string };

interface TokenAnswer {
  access_token: string;
  token_type: string;
  expires_in: number;
}

export interface Me {
  id?: string;
  email?: string;
  name?: string;
  roles: string[];
  /** Set for an order-number sign-in: the session sees this one order. */
  order_id?: string;
  order_number?: string;
}

type Listener = (signedIn: boolean) => void;

// Every /auth/session* request carries it: a cross-site form or fetch cannot set it.
const CSRF = { "X-Orderflow-CSRF": "1" };
// Refresh a little before the token runs out rather than fail a request first.
const EARLY_S = 20;

export class Session {
  private accessToken: string | null = null;
  private expiresAt = 0;
  private refreshing: Promise<boolean> | null = null;
  private listeners = new Set<Listener>();
  private meCache: Me | null = null;

  get signedIn(): boolean {
    return this.accessToken !== null;
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** POST /auth/session; throws ApiError (401 bad credentials, 429 locked out with retryAfter). */
  async signIn(credentials: Credentials): Promise<void> {
    const answer = await request<TokenAnswer>("/auth/session", { method: "POST", body: credentials, headers: CSRF });
    // Possibly someone else than before: forget the old identity.
    this.clear();
    this.accept(answer);
  }

  /** On page load: true when the cookie still holds a session. */
  restore(): Promise<boolean> {
    return this.refresh();
  }

  /** One refresh at a time: concurrent 401s share it. False (and signed out) when the session is gone. */
  refresh(): Promise<boolean> {
    this.refreshing ??= (async () => {
      try {
        this.accept(await request<TokenAnswer>("/auth/session/refresh", { method: "POST", headers: CSRF }));
        return true;
      } catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          this.clear();
          return false;
        }
        throw error;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  async signOut(): Promise<void> {
    try {
      await request<void>("/auth/session/logout", { method: "POST", headers: CSRF });
    } finally {
      this.clear();
    }
  }

  /** A token good for a while (refreshed if it is about to expire), e.g. for a WebSocket URL. */
  async token(): Promise<string | null> {
    if (this.accessToken && Date.now() / 1000 > this.expiresAt - EARLY_S) await this.refresh();
    return this.accessToken;
  }

  /** GET /auth/me, kept for the session's life. */
  async me(): Promise<Me> {
    this.meCache ??= await this.request<Me>("/auth/me");
    return this.meCache;
  }

  /** An API call as the signed-in user; after a 401 the session is refreshed once and the call repeated. */
  async send<T>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const token = await this.token();
    try {
      return await send<T>(path, { ...options, token });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401 || !token) throw error;
      if (!(await this.refresh())) throw error;
      return send<T>(path, { ...options, token: this.accessToken });
    }
  }

  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.send<T>(path, options)).data;
  }

  private accept(answer: TokenAnswer): void {
    const wasSignedIn = this.signedIn;
    this.accessToken = answer.access_token;
    this.expiresAt = Date.now() / 1000 + answer.expires_in;
    if (!wasSignedIn) this.notify();
  }

  private clear(): void {
    const wasSignedIn = this.signedIn;
    this.accessToken = null;
    this.expiresAt = 0;
    this.meCache = null;
    if (wasSignedIn) this.notify();
  }

  private notify(): void {
    this.listeners.forEach((listener) => listener(this.signedIn));
  }
}

export const session = new Session();
