"""The offline default data: a seeded world of fictional entities, its passages and its questions.

Nothing here is real: names are built from syllables, so no pretrained model knows an answer and
the agent has to search. The world (default ``seed=0``): 16 countries, 150 cities, 200
organisations and 800 people, with attributes (years, rivers, languages, industries, occupations)
and relations (a city's country, a person's birthplace and employer, an organisation's founder and
headquarters). Passages (about 2,900) are written from templates, one per fact group, plus two kinds
of distractor that mention the same names next to other facts: event reports (two people meet in
a city) and family notes (a surname's family "has lived in" another city). Questions are 1-hop
(one passage answers) and 2-hop (the first passage names a bridge entity whose passage answers).

Splits: every question is about one subject entity; subjects are split 80/20 (seeded), so train
and test share no question and, for 2-hop, no subject entity. ``generate`` is deterministic for a
seed and takes about 0.1 s; the env writes its result to ``$PAWKIT_CACHE/searchqa/`` as the same
JSONL files real data uses (corpus.jsonl, train.jsonl, test.jsonl).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

VERSION = 1  # bump when the generated text changes: it is part of the cache folder name
TEST_FRACTION = 0.2

_ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p", "qu", "r", "s", "st",
           "t", "th", "tr", "v", "w", "z", "sh", "vel", "mor", "tal"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ia", "ou", "ei"]
_CODAS = ["", "n", "r", "l", "s", "th", "x", "m", "nd", "rk"]
_CITY_END = ["holm", "ford", "vale", "mere", "burg", "wick", "stead", "haven", "port", "dale"]
_COUNTRY_END = ["ia", "land", "or", "istan", "ea", "ovia"]
_ORG_KINDS = ["Group", "Works", "Institute", "Holdings", "Foundry", "Press", "Labs", "Company", "Trust", "Guild"]
_INDUSTRIES = ["shipping", "publishing", "mining", "textile", "software", "brewing", "railway", "insurance",
               "glassmaking", "pharmaceutical", "aerospace", "farming"]
_OCCUPATIONS = ["engineer", "painter", "chemist", "architect", "novelist", "surgeon", "economist", "botanist",
                "composer", "journalist", "geologist", "lawyer", "astronomer", "sculptor", "historian", "pilot"]
_EVENTS = ["trade fair", "music festival", "science congress", "chess tournament", "film festival", "book fair",
           "sailing regatta", "design exhibition"]


@dataclass
class World:
    """The generated entities. Every name is unique across all kinds (and unique as a string)."""

    countries: list[dict[str, Any]] = field(default_factory=list)
    cities: list[dict[str, Any]] = field(default_factory=list)
    orgs: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def stem(self, syllables: int) -> str:
        while True:
            word = "".join(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)
                           for _ in range(syllables))
            if word not in self.used and len(word) >= 4:
                self.used.add(word)
                return word.capitalize()


def build_world(seed: int = 0, countries: int = 16, cities: int = 150, orgs: int = 200, people: int = 800) -> World:
    """The seeded entities and their relations (see the module docstring)."""
    rng = random.Random(f"searchqa-{VERSION}-{seed}")
    names = _Names(rng)
    world = World()
    for _ in range(countries):
        stem = names.stem(2)
        world.countries.append({"name": stem + rng.choice(_COUNTRY_END), "language": names.stem(2) + "ic"})
    for _ in range(cities):
        world.cities.append({"name": names.stem(1) + rng.choice(_CITY_END), "country": rng.randrange(countries),
                             "founded": rng.randint(900, 1800), "river": names.stem(2)})
    for country_index, country in enumerate(world.countries):  # a capital among its own cities (or any)
        own = [i for i, c in enumerate(world.cities) if c["country"] == country_index]
        country["capital"] = rng.choice(own) if own else rng.randrange(cities)
    firsts = [names.stem(rng.choice((1, 2))) for _ in range(160)]
    lasts = [names.stem(2) for _ in range(420)]
    pairs: set[tuple[str, str]] = set()
    while len(pairs) < people:
        pairs.add((rng.choice(firsts), rng.choice(lasts)))
    for first, last in sorted(pairs):
        world.people.append({"name": f"{first} {last}", "surname": last, "born": rng.randint(1900, 1999),
                             "birthplace": rng.randrange(cities), "occupation": rng.choice(_OCCUPATIONS),
                             "employer": None, "joined": 0})
    rng.shuffle(world.people)
    for _ in range(orgs):
        world.orgs.append({"name": f"{names.stem(2)} {rng.choice(_ORG_KINDS)}", "industry": rng.choice(_INDUSTRIES),
                           "founded": rng.randint(1850, 1990), "founder": rng.randrange(people),
                           "hq": rng.randrange(cities)})
    for person in world.people:
        person["employer"] = rng.randrange(orgs)
        person["joined"] = person["born"] + rng.randint(20, 40)
    return world


def passages(world: World, seed: int = 0) -> list[dict[str, str]]:
    """``{"id", "title", "text"}`` rows (FlashRAG's layout), facts first, then the distractors, then
    shuffled; ids ``d0``, ``d1``, ... in file order. The gold passage of a fact is found by its key."""
    rng = random.Random(f"searchqa-passages-{VERSION}-{seed}")
    city, country, org, person = world.cities, world.countries, world.orgs, world.people
    rows: list[tuple[str, str, str]] = []  # (key, title, text)
    for i, p in enumerate(person):
        rows.append((f"person-bio-{i}", p["name"],
                     f"{p['name']} (born {p['born']}) is a native of {city[p['birthplace']]['name']}, where "
                     f"{p['name'].split()[0]} was born and grew up."))
        rows.append((f"person-career-{i}", p["name"],
                     f"{p['name']} works as a {p['occupation']} for the organisation {org[p['employer']]['name']}, "
                     f"having joined it in {p['joined']}."))
    for i, o in enumerate(org):
        rows.append((f"org-{i}", o["name"],
                     f"{o['name']} is a {o['industry']} organisation founded in {o['founded']} by "
                     f"{person[o['founder']]['name']}. It is headquartered in {city[o['hq']]['name']}."))
    for i, c in enumerate(city):
        rows.append((f"city-{i}", c["name"],
                     f"{c['name']} is a city in the country of {country[c['country']]['name']}. It lies on the "
                     f"{c['river']} River and was founded in {c['founded']}."))
    for i, k in enumerate(country):
        rows.append((f"country-{i}", k["name"],
                     f"{k['name']} is a country whose official language is {k['language']}. Its capital is "
                     f"{city[k['capital']]['name']}."))
    for i in range(600):  # event reports: two people and a city that is neither one's birthplace
        a, b = rng.sample(range(len(person)), 2)
        event, year, where = rng.choice(_EVENTS), rng.randint(1950, 2020), rng.randrange(len(city))
        rows.append((f"event-{i}", f"{city[where]['name']} {event} {year}",
                     f"In {year}, {person[a]['name']} and {person[b]['name']} met at the {event} held in "
                     f"{city[where]['name']}, a meeting both later described in interviews."))
    surnames = sorted({p["surname"] for p in person})
    for i, surname in enumerate(rng.sample(surnames, min(300, len(surnames)))):
        members = [p["name"] for p in person if p["surname"] == surname][:3]
        where = rng.randrange(len(city))
        rows.append((f"family-{i}", f"{surname} family",
                     f"The {surname} family has lived in {city[where]['name']} since {rng.randint(1700, 1900)}; "
                     f"people who share the name include {', '.join(members)}."))
    rng.shuffle(rows)
    return [{"id": f"d{n}", "title": title, "text": text, "key": key} for n, (key, title, text) in enumerate(rows)]


def questions(world: World, docs: list[dict[str, str]], seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """``{"train": [...], "test": [...]}``: rows with ``question``, ``golden_answers`` (the answer and
    its aliases), ``hops`` (per hop: the expert's ``query`` and the gold passage ``doc`` id), ``type``
    and ``subject``; shuffled (1-hop and 2-hop mixed) and split by subject entity."""
    rng = random.Random(f"searchqa-questions-{VERSION}-{seed}")
    doc = {d["key"]: d["id"] for d in docs}
    city, country, org, person = world.cities, world.countries, world.orgs, world.people

    def hop(query: str, key: str) -> dict[str, str]:
        return {"query": query, "doc": doc[key]}

    rows: list[dict[str, Any]] = []

    def add(kind: str, subject: str, question: str, answer: str, hops: list[dict[str, str]], aliases=()) -> None:
        rows.append({"question": question, "golden_answers": [answer, *aliases], "type": kind,
                     "hops": hops, "subject": subject})

    for i, p in enumerate(person):
        name, bc, em = p["name"], p["birthplace"], p["employer"]
        bio, career = hop(f"{name} born", f"person-bio-{i}"), hop(f"{name} works for", f"person-career-{i}")
        add("1hop/birth_year", f"person-{i}", f"In what year was {name} born?", str(p["born"]), [bio])
        add("1hop/birthplace", f"person-{i}", f"In which city was {name} born?", city[bc]["name"], [bio])
        add("1hop/employer", f"person-{i}", f"Which organisation does {name} work for?", org[em]["name"], [career],
            aliases=[org[em]["name"].rsplit(" ", 1)[0]])
        add("1hop/occupation", f"person-{i}", f"What is the occupation of {name}?", p["occupation"], [career])
        add("2hop/birth_country", f"person-{i}", f"In which country was {name} born?",
            country[city[bc]["country"]]["name"], [bio, hop(f"{city[bc]['name']} country", f"city-{bc}")])
        add("2hop/employer_hq", f"person-{i}", f"In which city is the organisation that {name} works for headquartered?",
            city[org[em]["hq"]]["name"], [career, hop(f"{org[em]['name']} headquartered", f"org-{em}")])
        add("2hop/employer_founder", f"person-{i}", f"Who founded the organisation that {name} works for?",
            person[org[em]["founder"]]["name"], [career, hop(f"{org[em]['name']} founded by", f"org-{em}")])
    for i, o in enumerate(org):
        f, hq = o["founder"], o["hq"]
        entry = hop(f"{o['name']} founded", f"org-{i}")
        add("1hop/founder", f"org-{i}", f"Who founded {o['name']}?", person[f]["name"], [entry])
        add("1hop/org_hq", f"org-{i}", f"In which city is {o['name']} headquartered?", city[hq]["name"], [entry])
        add("1hop/org_founded", f"org-{i}", f"In what year was {o['name']} founded?", str(o["founded"]), [entry])
        add("2hop/founder_birth_year", f"org-{i}", f"In what year was the founder of {o['name']} born?",
            str(person[f]["born"]), [entry, hop(f"{person[f]['name']} born", f"person-bio-{f}")])
        add("2hop/hq_country", f"org-{i}", f"In which country is {o['name']} headquartered?",
            country[city[hq]["country"]]["name"], [entry, hop(f"{city[hq]['name']} country", f"city-{hq}")])
    for i, c in enumerate(city):
        entry = hop(f"{c['name']} city country", f"city-{i}")
        add("1hop/city_country", f"city-{i}", f"In which country is the city of {c['name']}?",
            country[c["country"]]["name"], [entry])
        add("1hop/city_river", f"city-{i}", f"On which river does {c['name']} lie?", c["river"], [entry],
            aliases=[f"{c['river']} River"])
        k = c["country"]
        add("2hop/city_language", f"city-{i}", f"What is the official language of the country {c['name']} is in?",
            country[k]["language"], [entry, hop(f"{country[k]['name']} official language", f"country-{k}")])
    subjects = sorted({r["subject"] for r in rows})
    test = set(rng.sample(subjects, round(TEST_FRACTION * len(subjects))))
    rng.shuffle(rows)
    return {"train": [r for r in rows if r["subject"] not in test], "test": [r for r in rows if r["subject"] in test]}


def generate(seed: int = 0) -> tuple[list[dict[str, str]], dict[str, list[dict[str, Any]]]]:
    """(corpus rows, {"train": questions, "test": questions}) of the default data for ``seed``."""
    world = build_world(seed)
    docs = passages(world, seed)
    return docs, questions(world, docs, seed)
