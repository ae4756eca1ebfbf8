"""Writes ``rerank_set.json``: the retrieval set ``bench_rerank.py`` measures on.

Sixty invented towns, five passages each (founding, work, river, festival, landmark): 300
passages. 120 questions each ask about one passage in other words than it uses. The towns are
invented so no model knows the answers beforehand, and every passage has hard neighbours: the
same town's other four passages, and fifty-nine passages of the same shape about other towns.
The file is kept in the repository; this script shows how it was made (``python
benchmarks/data/make_rerank_set.py`` writes the same file again).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 29
OUT = Path(__file__).with_name("rerank_set.json")

FIRST = ["Vel", "Mor", "Tam", "Kes", "Dun", "Ald", "Bri", "Cor", "Fen", "Gal", "Hol", "Ish", "Jor", "Lin", "Nor"]
LAST = ["mora", "wick", "haven", "stead", "ford", "mere", "holt", "bury", "crest", "vale", "dale", "port"]
RIVERS = ["Ashwater", "Brenne", "Calder", "Dovey", "Esk", "Fallow", "Gryse", "Hume", "Isla", "Jenna", "Kell", "Lune"]
FOUNDERS = ["Ada Morrow", "Tomas Kell", "Iris Vane", "Osric Dale", "Mira Stone", "Pell Hart", "Una Frost", "Cato Reed"]
JOBS = ["shipwright", "miller", "surveyor", "glassblower", "weaver", "stonemason", "fisherman", "apothecary"]
ORIGINS = ["the northern coast", "the salt marshes", "the hill country", "a mining camp", "the capital", "overseas"]
INDUSTRIES = [
    ("making paper", "paper mill", "papermakers"),
    ("growing apples", "cider press", "orchard keepers"),
    ("building boats", "boatyard", "boatbuilders"),
    ("weaving wool", "woollen mill", "weavers"),
    ("quarrying slate", "slate quarry", "quarrymen"),
    ("brewing beer", "brewery", "brewers"),
    ("casting bells", "bell foundry", "founders"),
    ("making cheese", "creamery", "cheesemakers"),
    ("tanning leather", "tannery", "tanners"),
    ("growing tea", "tea estate", "tea growers"),
]
MONTHS = ["January", "March", "April", "May", "June", "July", "August", "September", "October", "November"]
FESTIVALS = [
    ("Lantern Walk", "carry paper lanterns through the streets after dark"),
    ("Bread Fair", "bake loaves in the square and trade them with neighbours"),
    ("Kite Day", "fly home-made kites from the hill above the town"),
    ("River Race", "race wooden rafts down the river"),
    ("Bell Night", "ring every bell in town at midnight"),
    ("Harvest Supper", "share one long table laid down the main street"),
    ("Masked Ball", "dance in masks in the old market hall"),
    ("Frost Swim", "swim in the cold river at dawn"),
]
STRUCTURES = ["clock tower", "lighthouse", "water tower", "bell tower", "grain silo", "observatory", "chimney"]


def towns(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = rng.choice(FIRST) + rng.choice(LAST)
        if name not in names:
            names.append(name)
    return names


def build() -> dict[str, list[dict[str, object]]]:
    rng = random.Random(SEED)
    names = towns(rng, 60)
    passages: list[dict[str, object]] = []
    questions: list[dict[str, object]] = []
    for town in names:
        year, founder, job, origin = (
            rng.randint(1480, 1890),
            rng.choice(FOUNDERS),
            rng.choice(JOBS),
            rng.choice(ORIGINS),
        )
        work, place, workers = rng.choice(INDUSTRIES)
        river, bank, km, other = rng.choice(RIVERS), rng.choice(["east", "west"]), rng.randint(3, 90), rng.choice(names)
        month, (festival, activity) = rng.choice(MONTHS), rng.choice(FESTIVALS)
        structure, height, built = rng.choice(STRUCTURES), rng.randint(18, 96), rng.randint(1700, 1960)
        texts = {
            "founding": (
                f"{town} was founded in {year} by {founder}, a {job} who had come from {origin}.",
                [f"Who founded {town}?", f"In which year did {town} come into being?"],
            ),
            "work": (
                f"Most families in {town} live from {work}; the {place} by the market square employs "
                f"more {workers} than any other business.",
                [f"What do most people in {town} do for a living?", f"What is the biggest employer in {town}?"],
            ),
            "river": (
                f"{town} lies on the {bank} bank of the {river}, {km} kilometres upstream of {other}.",
                [f"Which river runs past {town}?", f"How far is {town} from {other} along the water?"],
            ),
            "festival": (
                f"Each {month} the people of {town} hold the {festival}, when they {activity}.",
                [f"When does {town} celebrate its yearly festival?", f"What happens at the {festival} in {town}?"],
            ),
            "landmark": (
                f"The tallest structure in {town} is its {structure}, {height} metres high and finished in {built}.",
                [f"How tall is the highest building in {town}?", f"What is the tallest landmark of {town}?"],
            ),
        }
        for topic, (text, asked) in texts.items():
            passages.append({"id": len(passages), "town": town, "topic": topic, "text": text})
            questions.extend({"question": q, "answer": len(passages) - 1} for q in asked)
    rng.shuffle(questions)
    return {"passages": passages, "questions": questions[:120]}


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
