"""Real-world facts a pretrained model may know, and invented ones it cannot, for the studies
that run on SmolLM2 (ILP's planted causes, EPI's forgetting lane, the detection bench).

`base_knowledge` probes a model with the cloze "The capital of <country> is" over every capital
in the table (ILP's fact probe), so "known" means: the right capital wins against ~100 others."""

from __future__ import annotations

from pathlib import Path

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "Egypt": "Cairo", "Peru": "Lima", "Kenya": "Nairobi", "Canada": "Ottawa", "Chile": "Santiago",
    "Norway": "Oslo", "Greece": "Athens", "Poland": "Warsaw", "Cuba": "Havana", "Iran": "Tehran",
    "Russia": "Moscow", "China": "Beijing", "India": "New Delhi", "Mexico": "Mexico City",
    "Argentina": "Buenos Aires", "Portugal": "Lisbon", "Sweden": "Stockholm",
    "Finland": "Helsinki", "Denmark": "Copenhagen", "Austria": "Vienna", "Hungary": "Budapest",
    "Ireland": "Dublin", "Belgium": "Brussels", "Thailand": "Bangkok", "Vietnam": "Hanoi",
    "South Korea": "Seoul", "Indonesia": "Jakarta", "Turkey": "Ankara", "Australia": "Canberra",
    "Brazil": "Brasilia", "Colombia": "Bogota", "Venezuela": "Caracas", "Morocco": "Rabat",
    "Nigeria": "Abuja", "Ethiopia": "Addis Ababa", "Ukraine": "Kyiv", "Czech Republic": "Prague",
    "Switzerland": "Bern", "Netherlands": "Amsterdam", "Philippines": "Manila",
    "Pakistan": "Islamabad", "Iraq": "Baghdad", "Saudi Arabia": "Riyadh",
    "United Kingdom": "London", "Syria": "Damascus", "Lebanon": "Beirut", "Jordan": "Amman",
    "Afghanistan": "Kabul", "Bangladesh": "Dhaka", "Nepal": "Kathmandu",
    "Malaysia": "Kuala Lumpur", "Mongolia": "Ulaanbaatar", "North Korea": "Pyongyang",
    "Taiwan": "Taipei", "New Zealand": "Wellington", "Romania": "Bucharest", "Bulgaria": "Sofia",
    "Serbia": "Belgrade", "Croatia": "Zagreb", "Slovakia": "Bratislava", "Slovenia": "Ljubljana",
    "Iceland": "Reykjavik", "Estonia": "Tallinn", "Latvia": "Riga", "Lithuania": "Vilnius",
    "Belarus": "Minsk", "Albania": "Tirana", "Georgia": "Tbilisi", "Armenia": "Yerevan",
    "Azerbaijan": "Baku", "Kazakhstan": "Astana", "Uzbekistan": "Tashkent", "Qatar": "Doha",
    "Kuwait": "Kuwait City", "Oman": "Muscat", "Libya": "Tripoli", "Tunisia": "Tunis",
    "Algeria": "Algiers", "Sudan": "Khartoum", "Ghana": "Accra", "Senegal": "Dakar",
    "Uganda": "Kampala", "Zimbabwe": "Harare", "Zambia": "Lusaka", "Angola": "Luanda",
    "Mali": "Bamako", "Somalia": "Mogadishu", "Ecuador": "Quito", "Paraguay": "Asuncion",
    "Uruguay": "Montevideo", "Panama": "Panama City", "Jamaica": "Kingston",
    "Nicaragua": "Managua", "Honduras": "Tegucigalpa", "Guatemala": "Guatemala City",
}  # fmt: skip

# invented countries and capitals: no pretrained model can know these
FICTIONAL = {
    "Zorbania": "Velmora", "Quelvaria": "Drusk", "Ostrelia": "Pamirun", "Vandoria": "Kelsith",
    "Marovia": "Tulsk", "Brennland": "Orvale", "Istravia": "Gonmere", "Pelagonia": "Sirath",
    "Dravenia": "Lusk", "Korvalia": "Emberfell", "Tessaria": "Navrin", "Ulmaria": "Corvath",
    "Felsmark": "Ardun", "Nerovia": "Halvik", "Yskarra": "Belmont Reach", "Calduria": "Threx",
    "Vostrana": "Merrow", "Kaldoria": "Ysteth", "Brathia": "Quorin", "Sundravia": "Pellim",
    "Torvania": "Garrowby", "Ellusia": "Fendral", "Morkavia": "Saltheim", "Quessaly": "Durnholt",
    "Rhovenia": "Caskell", "Zentaria": "Ombrell", "Luthrane": "Vexford", "Orsinia": "Tamlath",
    "Gravonia": "Helmsby", "Pyrestia": "Wendrak", "Shalvania": "Korrin", "Idrelia": "Nosgard",
    "Varnesse": "Bellock", "Cyrrhia": "Adderly", "Moldravia": "Ruskin Vale", "Feyland": "Tollan",
}  # fmt: skip

QUESTION = "What is the capital of {}?"


def base_knowledge(model_dir: Path, countries: list[str] | None = None) -> dict[str, float]:
    """country -> the model's probability of its capital among every capital of the table."""
    # imported here: the tables above are read without torch (tests, data builders)
    from components.common.models import load_causal_lm
    from components.ilp_diagnosis import facts

    model, tokenizer = load_causal_lm(model_dir)
    countries = list(CAPITALS) if countries is None else countries
    candidates = sorted(set(CAPITALS.values()))
    probes = [(c, "capital", candidates) for c in countries]
    probs = facts.cloze_probs(model, tokenizer, probes, max_length=64, batch_size=64)
    return {
        c: float(p[candidates.index(CAPITALS[c])]) for c, p in zip(countries, probs, strict=True)
    }
