// The one way the pages talk to the API: JSON in and out, problem+json errors as ApiError.

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extra: string]: unknown;
}

/** An answer that was not 2xx (status, problem members, the request id to quote), or no answer at all (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** Members beyond the standard ones, e.g. `allowed` and `current_status` of a 409. */
  readonly extras: Record<string, unknown>;
  readonly requestId: string | null;
  readonly retryAfter: number | null;

  constructor(problem: Problem, requestId: string | null = null, retryAfter: number | null = null) {
    super(problem.detail || problem.title);
    this.name = "ApiError";
    const { type, title, status, detail, ...extras } = problem;
    this.status = status;
    this.type = type;
    this.title = title;
    this.detail = detail;
    this.extras = extras;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  /** The last part of the problem type, e.g. "illegal-transition" for urn:orderflow:problem:illegal-transition. */
  get kind(): string {
    return this.type.split(":").pop() ?? this.type;
  }

  get isNetwork(): boolean {
    return this.status === 0;
  }
}

export interface RequestOptions {
  method?: string;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Bearer access token. */
  token?: string | null;
  query?: Record<string, string | number | readonly string[] | null | undefined>;
  signal?: AbortSignal;
}

export interface ApiResponse<T> {
  data: T;
  status: number;
  headers: Headers;
}

export function withQuery(path: string, query: RequestOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(name, v));
    else params.append(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}${path.includes("?") ? "&" : "?"}${text}` : path;
}

export async function send<T>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { Accept: "application/json, application/problem+json", ...options.headers };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.token) headers["Authorization"] = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await fetch(withQuery(path, options.query), {
      method: options.method ?? (options.body === undefined ? "GET" : "POST"),
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError({ type: "network", title: "Network error", status: 0, detail: String(error) });
  }
  const requestId = response.headers.get("X-Request-ID");
  if (!response.ok) {
    throw new ApiError(await problemOf(response), requestId, retryAfterOf(response));
  }
  const data = (response.status === 204 ? undefined : await bodyOf(response)) as T;
  return { data, status: response.status, headers: response.headers };
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  return (await send<T>(path, options)).data;
}

async function bodyOf(response: Response): Promise<unknown> {
  const type = response.headers.get("Content-Type") ?? "";
  if (type.includes("json")) return response.json();
  return response.text();
}

async function problemOf(response: Response): Promise<Problem> {
  const fallback: Problem = { type: "about:blank", title: response.statusText || "Error", status: response.status, detail: "" };
  try {
    const body: unknown = await response.json();
    if (body && typeof body === "object") return { ...fallback, ...(body as Partial<Problem>), status: response.status };
  } catch {
    // Not JSON (a proxy's own page): the status line is all there is.
  }
  return fallback;
}

function retryAfterOf(response: Response): number | null {
  const value = Number(response.headers.get("Retry-After"));
  return Number.isFinite(value) && value > 0 ? value : null;
}
