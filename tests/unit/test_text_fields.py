"""One-line text from outside (actors/common/text.py): every name field of every service
refuses NUL (PostgreSQL text cannot hold it) and the other control characters."""

import pytest
from pydantic import BaseModel, ValidationError

from actors.auth.domain import Registration
from actors.common.text import Name, single_line
from actors.orders.domain import Customer, Item

BAD = ["\x00", "Ada\x00", "A\x00da", "A\x01da", "A\tda", "A\nda", "A\rda", "A\x1bda", "A\x7fda", "A\x85da",
       "A\u2028da", "A\u2029da", "A\ud800da", "A\udfffda"]
GOOD = ["Ada", "Zoë Łukasiewicz", "株式会社", "Ada 👩\u200d💻 Lovelace", "O'Brien & Sons, Ltd.", "x" * 200]


def registration(name: str) -> Registration:
    return Registration(email="ada@example.com", password="a long enough password", name=name)


def customer(name: str) -> Customer:
    return Customer(email="ada@example.com", name=name)


def item(name: str) -> Item:
    return Item(sku="MUG-01", name=name, quantity=1, unit_price="1.00")


MODELS = [registration, customer, item]


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("name", BAD)
def test_control_characters_are_refused_in_every_name(make, name):
    with pytest.raises(ValidationError) as refused:
        make(name)
    [error] = refused.value.errors()
    assert error["loc"] == ("name",)


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("name", GOOD)
def test_names_in_any_script_are_kept(make, name):
    assert make(name).name == name


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_names_are_one_to_two_hundred_characters(make, name):
    with pytest.raises(ValidationError):
        make(name)


def test_the_message_names_the_character_found():
    with pytest.raises(ValueError, match="U\\+0000"):
        single_line("Ada\x00")

    class Named(BaseModel):
        name: Name

    assert Named(name="  Ada  ").name == "Ada"
