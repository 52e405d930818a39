"""Bad text at registration over HTTP on the real auth database: a NUL in the name was a
500 (PostgreSQL text cannot hold it); control characters are refused like every other name
field (actors/common/text.Name)."""

import json

import pytest

from tests.factories import PASSWORD, unique_email
from tests.integration.accounts_support import world  # noqa: F401 (fixture)


@pytest.mark.parametrize("name", ["Ada\x00", "\x00", "Ada\x1b[2J", "Ada\nLovelace", "Ada\ud800"])
async def test_a_name_with_control_characters_is_a_422_and_makes_no_account(world, name):
    address = unique_email("named")
    body = json.dumps({"email": address, "password": PASSWORD, "name": name})  # "\u0000" as JSON writes it
    response = await world.http.post("/auth/register", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert ["body", "name"] in [e["loc"] for e in response.json()["errors"]]

    # Nothing was made: the address registers afresh and gets the welcome, not "someone tried".
    assert (await world.register(address, name="Ada Lovelace")).status_code == 202
    [welcome] = await world.mail_to(address)
    assert welcome["Subject"] == "Confirm your e-mail address for Orderflow"
