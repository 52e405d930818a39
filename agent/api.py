"""Talking to Orderflow through the gateway: logging in, keeping an access token fresh,
and reading the notifications log."""

import time

import httpx

from agent.state import AgentState, Session

PAGE = 500


class LoginRequired(RuntimeError):
    """No usable credentials: run `orderflow-agent login` (or set email and password)."""


class ServerError(RuntimeError):
    """The server cannot give the agent what it asked for now; worth trying again later."""


class NotAllowed(RuntimeError):
    """The account is not staff: retrying will not help."""


def _problem(response: httpx.Response) -> str:
    try:
        return response.json().get("detail") or response.text[:200]
    except ValueError:
        return response.text[:200]


class Credentials:
    """An access token that is renewed before it expires: with the saved session's refresh
    token (only ever sent to the gateway it came from), else by logging in with staff
    credentials when there are any. Every new refresh token (they rotate) is saved at once,
    with its gateway."""

    def __init__(self, http: httpx.AsyncClient, state: AgentState, *, email: str | None = None,
                 password: str | None = None):
        self.http = http
        self.server = str(http.base_url).rstrip("/")
        self.state = state
        self.email = email
        self.password = password
        self._access: str | None = None
        self._expires_at = 0.0

    async def access_token(self, *, renew: bool = False) -> str:
        if renew or self._access is None or time.monotonic() > self._expires_at - 30:
            await self._renew()
        return self._access

    async def login(self) -> None:
        if not (self.email and self.password):
            raise LoginRequired("No staff email and password given.")
        response = await self.http.post("/auth/login", json={"email": self.email, "password": self.password})
        if response.status_code == 429:  # a lockout ends by itself; attempts meanwhile do not extend it
            raise ServerError(f"login refused for now: {_problem(response)} "
                              f"(Retry-After: {response.headers.get('retry-after', '?')} s)")
        if response.status_code in (401, 422):
            raise LoginRequired(f"Login refused: {_problem(response)}")
        self._take(response)

    async def logout(self) -> None:
        """End the session on the server and forget it here."""
        token = await self.access_token()
        response = await self.http.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 204:
            raise ServerError(f"logout answered {response.status_code}: {_problem(response)}")
        self.state.forget_session()

    async def _renew(self) -> None:
        session = self.state.session
        if session and session.server != self.server:
            if not (self.email and self.password):
                raise LoginRequired(
                    f"The saved session is for {session.server}, not {self.server}: run "
                    f"`orderflow-agent login --server {self.server}`, or use --server {session.server}.")
            session = None  # a login to this server replaces it
        if session:
            response = await self.http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
            if response.status_code == 200:
                self._take(response)
                return
            if response.status_code not in (401, 422):
                raise ServerError(f"refresh answered {response.status_code}: {_problem(response)}")
            self.state.forget_session()
        if self.email and self.password:
            await self.login()
            return
        raise LoginRequired("The saved session has ended; run `orderflow-agent login` again.")

    def _take(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise ServerError(f"/auth answered {response.status_code}: {_problem(response)}")
        pair = response.json()
        self.state.save_session(Session(self.server, pair["refresh_token"]))
        self._access = pair["access_token"]
        self._expires_at = time.monotonic() + float(pair.get("expires_in", 300))


class NotificationsApi:
    def __init__(self, http: httpx.AsyncClient, credentials):
        self.http = http
        self.credentials = credentials

    async def _get(self, params: dict) -> list[dict]:
        response = await self._get_once(params, renew=False)
        if response.status_code == 401:  # the token ended early (logout elsewhere, key rotation): renew once
            response = await self._get_once(params, renew=True)
        if response.status_code == 403:
            raise NotAllowed(f"The server refuses this account: {_problem(response)}")
        if response.status_code != 200:
            # A fresh token refused too is a server-side hiccup (keys being rotated), not a lost login.
            raise ServerError(f"GET /notifications answered {response.status_code}: {_problem(response)}")
        return response.json()["items"]

    async def _get_once(self, params: dict, *, renew: bool) -> httpx.Response:
        token = await self.credentials.access_token(renew=renew)
        return await self.http.get("/notifications", params=params, headers={"Authorization": f"Bearer {token}"})

    async def after(self, after_id: int) -> list[dict]:
        """Every notification after `after_id`, oldest first (all pages)."""
        found: list[dict] = []
        while True:
            page = await self._get({"after": after_id, "limit": PAGE})
            found += page
            if len(page) < PAGE:
                return found
            after_id = page[-1]["id"]

    async def newest_id(self) -> int:
        page = await self._get({"limit": 1})
        return page[-1]["id"] if page else 0
