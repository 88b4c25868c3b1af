from pathlib import Path

import pytest
import yaml
from chat.seed import Seed, _agent_id, load_seed
from pydantic import ValidationError

DEMO_SEED = Path(__file__).parents[2] / "seed" / "demo.yaml"


def _site(**overrides):
    return {
        "site_id": "shop",
        "site_key": "pk_shop_12345",
        "name": "Shop",
        "allowed_origins": ["https://Shop.Example/", "https://www.shop.example"],
        "settings": {"greeting": "Hi!", "default_team": "sales"},
        "teams": [{"team": "sales", "name": "Sales"}],
        "agents": [
            {
                "email": "anna@shop.example",
                "password": "long-enough",
                "name": "Anna",
                "teams": ["sales"],
            }
        ],
    } | overrides


def _agent(**overrides):
    return _site()["agents"][0] | overrides


def _load(tmp_path, document):
    path = tmp_path / "seed.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return load_seed(path)


def test_loads_a_site_with_its_teams_and_agents(tmp_path):
    seed = _load(tmp_path, {"sites": [_site()]})
    [site] = seed.sites
    assert site.site_id == "shop"
    assert [team.team for team in site.teams] == ["sales"]
    [agent] = site.agents
    assert (agent.email, agent.name, agent.teams) == ("anna@shop.example", "Anna", ["sales"])
    assert (agent.role, agent.max_chats, agent.agent_id) == ("agent", 5, None)  # defaults


def test_origins_are_normalised_like_the_origin_check(tmp_path):
    [site] = _load(tmp_path, {"sites": [_site()]}).sites
    assert site.allowed_origins == ["https://shop.example", "https://www.shop.example"]


@pytest.mark.parametrize("document", ["", "{}\n", "# nothing yet\n"])
def test_an_empty_file_seeds_nothing(tmp_path, document):
    assert _load(tmp_path, document).sites == []


def test_the_demo_seed_is_valid():
    seed = load_seed(DEMO_SEED)
    [site] = seed.sites
    assert site.site_id == "demo"
    assert {team.team for team in site.teams} == {"sales", "support"}
    assert len(site.agents) == 3


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"sites": None}, "sites"),
        ({"sites": [], "extra": 1}, "extra"),
        ({"sites": [_site(site_id="Shop")]}, "site_id"),
        ({"sites": [_site(site_id="")]}, "site_id"),
        ({"sites": [_site(site_key="short")]}, "site_key"),
        ({"sites": [_site(colour="#fff")]}, "colour"),
        ({"sites": [_site(teams=[{"team": "has space"}])]}, "team"),
        ({"sites": [_site(agents=[_agent(email="not-an-email")])]}, "email"),
        ({"sites": [_site(agents=[_agent(password="short")])]}, "password"),
        ({"sites": [_site(agents=[_agent(name="")])]}, "name"),
        ({"sites": [_site(agents=[_agent(role="owner")])]}, "role"),
        ({"sites": [_site(agents=[_agent(max_chats=0)])]}, "max_chats"),
        ({"sites": [_site(agents=[_agent(max_chats=51)])]}, "max_chats"),
        ({"sites": [_site(agents=[_agent(teams="sales")])]}, "teams"),
        ({"sites": [_site(agents=[_agent(pasword="typo-in-key")])]}, "pasword"),
    ],
)
def test_bad_input_is_refused_with_where_it_is(tmp_path, document, where):
    with pytest.raises(ValidationError) as caught:
        _load(tmp_path, document)
    locations = {str(part) for error in caught.value.errors() for part in error["loc"]}
    assert where in locations


def test_a_yaml_list_instead_of_a_mapping_is_refused(tmp_path):
    with pytest.raises(ValidationError):
        _load(tmp_path, "- site_id: shop\n")


def test_a_missing_password_keeps_the_stored_one():
    agent = Seed.model_validate({"sites": [_site(agents=[_agent(password=None)])]}).sites[0]
    assert agent.agents[0].password is None


@pytest.mark.parametrize(
    ("site_id", "email", "agent_id"),
    [
        ("demo", "anna@demo.beckon.dev", "demo-anna"),
        ("demo", "Anna.Virtanen@Example.com", "demo-anna-virtanen"),
        ("shop", "ben+sales@example.com", "shop-ben-sales"),
        ("shop", "--x__y--@example.com", "shop-x-y"),
        ("shop", "+++@example.com", "shop-agent"),
    ],
)
def test_agent_id_comes_from_the_site_and_the_emails_local_part(site_id, email, agent_id):
    assert _agent_id(site_id, email) == agent_id


def test_the_same_person_on_two_sites_gets_two_ids():
    assert _agent_id("shop", "anna@example.com") != _agent_id("demo", "anna@example.com")


def test_two_agents_that_would_share_an_id_are_refused_not_merged():
    site = {
        "site_id": "shop",
        "site_key": "pk_shop_test",
        "agents": [
            {"email": "anna@shop.example", "name": "Anna"},
            {"email": "anna@partner.example", "name": "Anna P"},
        ],
    }
    with pytest.raises(ValidationError, match="explicit agent_id"):
        Seed.model_validate({"sites": [site]})
    site["agents"][1]["agent_id"] = "shop-anna-partner"
    seed = Seed.model_validate({"sites": [site]})
    assert [agent.agent_id for agent in seed.sites[0].agents] == [None, "shop-anna-partner"]
